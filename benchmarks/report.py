"""Turn a pytest-benchmark JSON file into the Markdown tables of benchmarks/README.md.

    pytest benchmarks --benchmark-only --benchmark-json=/tmp/bench.json
    python benchmarks/report.py /tmp/bench.json

Times are the minimum round (the least disturbed by other load) in microseconds; ratios are
ours divided by the floor and the peer divided by ours. Reads a file; never runs anything.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

CODECS = ("ours", "floor", "construct", "pymodbus-rtu", "pymodbus-rtu+pdu")


def _codec_tables(benchmarks: list[dict[str, Any]]) -> list[str]:
    times_us: dict[tuple[str, int, str], float] = {}
    for result in benchmarks:
        info = result.get("extra_info", {})
        if "codec" in info:
            operation = result["group"].split()[0]
            times_us[(operation, info["information_bytes"], info["codec"])] = (
                result["stats"]["min"] * 1e6)
    lines = []
    for size in sorted({size for _, size, _ in times_us}):
        lines += [f"### {size} bytes of information", "",
                  "| operation | ours (us) | floor (us) | construct (us) | pymodbus RTU (us) "
                  "| ours / floor | pymodbus / ours | pymodbus RTU + PDU (us) |",
                  "|---|---|---|---|---|---|---|---|"]
        for operation in ("encode", "decode"):
            row = [times_us.get((operation, size, codec)) for codec in CODECS]
            if None in row:
                continue
            ours, floor, construct, peer, peer_with_pdu = row
            lines.append(f"| {operation} | {ours:.2f} | {floor:.2f} | {construct:.1f} | "
                         f"{peer:.2f} | {ours / floor:.2f}x | {peer / ours:.1f}x | "
                         f"{peer_with_pdu:.2f} |")
        lines.append("")
    return lines


def _stream_table(benchmarks: list[dict[str, Any]]) -> list[str]:
    rows = [(result["extra_info"]["decoder"], result["extra_info"]) for result in benchmarks
            if "decoder" in result.get("extra_info", {})]
    if not rows:
        return []
    lines = ["| stream decoder | MB/s (best round) | MB/s (mean round) |", "|---|---|---|"]
    for decoder, info in rows:
        lines.append(f"| {decoder} | {info.get('best_megabytes_per_second', '-')} | "
                     f"{info.get('megabytes_per_second', '-')} |")
    return [*lines, ""]


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        print("usage: python benchmarks/report.py BENCHMARK_JSON", file=sys.stderr)
        return 2
    data = json.loads(Path(argv[1]).read_text())
    benchmarks = data["benchmarks"]
    info = benchmarks[0].get("extra_info", {}) if benchmarks else {}
    machine = data.get("machine_info", {})
    print(f"Interpreter: {info.get('python_implementation')} {info.get('python_version')}; "
          f"CRC backend: {info.get('crc_backend')}; CPU: {machine.get('cpu', {}).get('brand_raw')}"
          f" ({machine.get('cpu', {}).get('count')} cores)\n")
    print("\n".join(_codec_tables(benchmarks) + _stream_table(benchmarks)))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
