"""``secure-emu demo``: a scripted tour of the S1SR Section 18 clauses, end to end over a pty.

The default profile's devices are served on a pty pair by a background thread, on virtual
device time; the S1SP adapter drives them through a :class:`~protocol.client.DeviceClient` on
that pty with DUIS requests from :class:`~protocol.s1sp.builders.DuisRequestBuilder`, and a
readable transcript says, per step, what was asked (in DUIS units), what went on the wire (the
request APDUs' key fields: pence, minutes, Annex C values) and what the response said (code and
key values). Virtual time is moved on
with ADVANCE_DEVICE_TIME where that shows something (join window expiry, consumption).

This module holds no protocol or device logic: it only asks the builders for requests and
prints what the real parts did. It must run in a few seconds and never touch a state file.
"""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, TextIO

from defusedxml.ElementTree import fromstring

from protocol.apdu import (
    MANAGEMENT_SERVER_ADDRESS,
    REQUEST_BODY_TYPES,
    AdvanceDeviceTimeRequest,
    Command,
    DeviceIdentity,
    DeviceType,
    Empty,
    PaymentMode,
    Request,
    Response,
    describe_fields,
)
from protocol.errors import ProtocolError
from protocol.eui64 import format_eui64
from protocol.s1sp.builders import DuisMoney, DuisRequestBuilder
from protocol.s1sp.duis import parse_duis_request
from protocol.s1sp.duis_xml import DUIS_NAMESPACE
from protocol.s1sp.service_requests import SERVICE_REQUESTS
from protocol.s1sp.units import device_seconds_to_duis_date_time

__all__ = ["DEMO_START_DEVICE_TIME_SECONDS", "DemoDevices", "run_demo"]

#: A device added to the HAN join list that never joins, so its window visibly expires.
NEVER_JOINING_EUI = "00-DB-12-34-56-78-90-EE"
#: Virtual device time the demo starts at when the profile names none: 2026-01-05T08:00:00Z.
DEMO_START_DEVICE_TIME_SECONDS = 1_767_600_000
#: The RequestID counter of the demo's first request.
FIRST_REQUEST_COUNTER = 1001


# --------------------------------------------------------------------------------------------
# Watching the wire and reading responses
# --------------------------------------------------------------------------------------------


@dataclass
class RecordingChannel:
    """A DeviceChannel that records every request and response the adapter exchanges."""

    inner: Any
    exchanges: list[tuple[int, Request, Response]] = field(default_factory=list)

    def request(self, server_address: int, request: Request) -> Response:
        response: Response = self.inner.request(server_address, request)
        self.exchanges.append((server_address, request, response))
        return response


def _wire_lines(exchanges: list[tuple[int, Request, Response]],
                names: dict[int, str]) -> list[str]:
    """One line per request APDU, runs of FIRMWARE_BLOCK to one device folded into one."""
    lines: list[str] = []
    block_run: tuple[int, int, int] | None = None  # address, blocks, bytes

    def close_run() -> None:
        nonlocal block_run
        if block_run is not None:
            address, count, size = block_run
            lines.append(f"wire -> {names.get(address, 'device')}@{address} FIRMWARE_BLOCK x{count}"
                         f" ({size} bytes in blocks of up to 1024, segmented on the link)")
            block_run = None

    for address, request, response in exchanges:
        if request.command is Command.FIRMWARE_BLOCK:
            size = len(request.body.block_data)
            if block_run is not None and block_run[0] == address:
                block_run = (address, block_run[1] + 1, block_run[2] + size)
            else:
                close_run()
                block_run = (address, 1, size)
            continue
        close_run()
        if request.command is Command.READ_DEVICE_DIRECTORY:
            continue
        who = f"{names.get(address, 'device')}@{address}"
        fields = describe_fields(request.body)
        lines.append(f"wire -> {who} {request.command.name}" + (f" {fields}" if fields else "")
                     + f"   <- {response.status.name}")
    close_run()
    return lines or ["wire: nothing sent to any device"]


def _pretty(xml: str) -> str:
    """The adapter's response indented for reading (unchanged if it cannot be parsed)."""
    from xml.etree.ElementTree import indent, register_namespace, tostring

    try:
        root = fromstring(xml.encode("utf-8"))
    except Exception:
        return xml
    register_namespace("sr", DUIS_NAMESPACE)
    indent(root, space="  ")
    return tostring(root, encoding="unicode")


def _local(tag: str) -> str:
    return tag.rpartition("}")[2]


def _response_lines(xml: str) -> list[str]:
    try:
        root = fromstring(xml.encode("utf-8"))
    except Exception as error:  # the adapter's output; report rather than crash the demo
        return [f"response: not readable XML ({error})"]
    code = ""
    leaves: list[str] = []
    for node in root.iter():
        name = _local(str(node.tag))
        text = (node.text or "").strip()
        if name == "ResponseCode" and not code:  # the header's; per-device ones are values
            code = text
            continue
        if len(node) or not text or name in {"RequestID", "ResponseID",
                                               "ResponseDateTime", "ServiceReference",
                                               "ServiceReferenceVariant"}:
            continue
        limit = 160 if name in {"ErrorReason", "Reason"} else 40
        leaves.append(f"{name}={text if len(text) <= limit else text[:limit - 3] + '...'}")
    return [f"response {code}: " + ("; ".join(leaves) if leaves else "(no values)")]


# --------------------------------------------------------------------------------------------
# The script
# --------------------------------------------------------------------------------------------


@dataclass
class DemoDevices:
    """What READ_DEVICE_DIRECTORY said is behind the link."""

    hub_address: int
    hub_eui: str
    esme_address: int
    esme_eui: str
    esme_eui64: bytes
    esme_model: str
    gsme_address: int | None
    gsme_eui: str | None
    names: dict[int, str]

    @classmethod
    def from_directory(cls, devices: Iterable[DeviceIdentity]) -> DemoDevices:
        by_type: dict[DeviceType, DeviceIdentity] = {}
        names: dict[int, str] = {MANAGEMENT_SERVER_ADDRESS: "management"}
        for device in devices:
            by_type.setdefault(device.device_type, device)
            names[device.server_address] = {
                DeviceType.COMMS_HUB: "hub", DeviceType.ELECTRICITY_METER: "ESME",
                DeviceType.GAS_METER: "GSME"}.get(device.device_type, "device")
        hub = by_type[DeviceType.COMMS_HUB]
        esme = by_type[DeviceType.ELECTRICITY_METER]
        gsme = by_type.get(DeviceType.GAS_METER)
        return cls(hub.server_address, format_eui64(hub.device_eui64),
                   esme.server_address, format_eui64(esme.device_eui64),
                   esme.device_eui64, esme.model,
                   gsme.server_address if gsme else None,
                   format_eui64(gsme.device_eui64) if gsme else None, names)


class _Tour:
    def __init__(self, client: Any, adapter: Any, channel: RecordingChannel, out: TextIO,
                 show_xml: bool) -> None:
        self.client = client
        self.adapter = adapter
        self.channel = channel
        self.out = out
        self.show_xml = show_xml
        self.build = DuisRequestBuilder(counter_start=FIRST_REQUEST_COUNTER)
        self.step_number = 0
        directory = client.request(MANAGEMENT_SERVER_ADDRESS,
                                   Request(Command.READ_DEVICE_DIRECTORY, 1, body=Empty()))
        self.devices = DemoDevices.from_directory(directory.body.devices)

    def say(self, text: str = "") -> None:
        self.out.write(text + "\n")

    def step(self, clause: str, asked: str, xml: str) -> str:
        """Submit one built request, showing what it asked, the wire and the response."""
        self.step_number += 1
        request = parse_duis_request(xml)
        variant = request.service_reference_variant
        self.say(f"{self.step_number:2d}. [{clause}] SR {variant} "
                 f"{SERVICE_REQUESTS[variant].body_name} -> "
                 f"{format_eui64(request.request_id.target_eui64)}")
        self.say(f"    asked: {asked}")
        if self.show_xml:
            self.say("    request XML:")
            self.say("\n".join("      " + line for line in xml.strip().splitlines()))
        self.channel.exchanges.clear()
        response = self.adapter.submit(xml)
        if self.show_xml:
            response = _pretty(response)
        for line in _wire_lines(self.channel.exchanges, self.devices.names):
            self.say(f"    {line}")
        for line in _response_lines(response):
            self.say(f"    {line}")
        if self.show_xml:
            self.say("    response XML:")
            self.say("\n".join("      " + line for line in response.strip().splitlines()))
        return response

    def direct(self, server_address: int, command: Command, note: str,
               **fields: Any) -> Response:
        """A request straight on the link (no DUIS), shown as such; ``fields``: the typed
        request body's."""
        response: Response = self.client.request(
            server_address, Request(command, 1, body=REQUEST_BODY_TYPES[command](**fields)))
        shown = describe_fields(response.body) if response.body is not None else ""
        self.say(f"    link: {command.name} to {self.devices.names.get(server_address, '?')}"
                 f"@{server_address} ({note}) <- {response.status.name}"
                 + (f" {shown}" if shown else ""))
        return response

    def advance(self, seconds: int, why: str) -> int:
        """Move virtual device time on; the device time now."""
        response = self.client.request(MANAGEMENT_SERVER_ADDRESS, Request(
            Command.ADVANCE_DEVICE_TIME, 1, body=AdvanceDeviceTimeRequest(advance_seconds=seconds)))
        now: int = response.body.device_time_seconds
        self.say(f"    ... virtual device time +{seconds} s ({why}); "
                 f"now {device_seconds_to_duis_date_time(now)}")
        return now


def _script(tour: _Tour, make_top_up_utrn: Callable[..., str],
            build_image: Callable[..., bytes]) -> None:
    """The tour, chapter by chapter."""
    _directory(tour)
    tour.say()
    _balance_and_payment_mode(tour)
    _emergency_credit_and_top_up(tour, make_top_up_utrn)
    _load_limiting(tour)
    _han_join_window(tour)
    tour.say()
    _firmware(tour, build_image)
    tour.say()
    _after_a_day(tour)


def _directory(tour: _Tour) -> None:
    devices = tour.devices
    tour.say("Devices behind the link (READ_DEVICE_DIRECTORY at the management address "
             f"{MANAGEMENT_SERVER_ADDRESS}):")
    for address, name in sorted(devices.names.items()):
        if address != MANAGEMENT_SERVER_ADDRESS:
            eui = {devices.hub_address: devices.hub_eui, devices.esme_address: devices.esme_eui,
                   devices.gsme_address: devices.gsme_eui}.get(address, "?")
            tour.say(f"    {name:<4} server address {address:<3} EUI-64 {eui}")


def _balance_and_payment_mode(tour: _Tour) -> None:
    """S1SR 18.3 and 18.16 (balance adjustments), 18.4 and 18.27 (payment mode, thresholds)."""
    build, esme = tour.build, tour.devices.esme_eui
    tour.step("4.18", "the ESME's balance before we start", build.read_meter_balance(esme))
    tour.step("18.3 18.16",
              "AdjustMeterBalance +123456 (1/100000 GBP, i.e. 123.456 p): truncated to 123 p",
              build.update_meter_balance(esme, adjust_pence=DuisMoney(123456)))
    tour.step("18.3 18.16",
              "AdjustMeterBalance -98765 (-98.765 p): truncated toward zero to -98 p",
              build.update_meter_balance(esme, adjust_pence=DuisMoney(-98765)))
    tour.step("18.4", "to Credit first, so the switch below shows",
              build.update_payment_mode(esme, PaymentMode.CREDIT))
    tour.step("18.4 18.27",
              "to Prepayment, DisablementThreshold 556677 -> 556 p (556000 back); Annex C "
              "defaults appended for parameters never configured",
              build.update_payment_mode(esme, PaymentMode.PREPAYMENT,
                                        suspend_debt_disabled=False, suspend_debt_emergency=True,
                                        disablement_threshold_pence=DuisMoney(556677)))
    tour.step("18.4", "the balance carried over the switch unchanged; emergency credit not "
              "active", build.read_meter_balance(esme))
    tour.step("18.27",
              "LowCreditThreshold 100999 -> 100 p, EmergencyCreditLimit 500000 (500 p), "
              "EmergencyCreditThreshold 200999 -> 200 p, DisablementThreshold 0 (so the "
              "supply stays on below)",
              build.update_prepay_configuration(
                  esme, low_credit_threshold_pence=DuisMoney(100999),
                  emergency_credit_limit_pence=500,
                  emergency_credit_threshold_pence=DuisMoney(200999),
                  disablement_threshold_pence=0))


def _emergency_credit_and_top_up(tour: _Tour, make_top_up_utrn: Callable[..., str]) -> None:
    """S1SR 18.8 (emergency credit), then a top-up that repays it and its duplicate."""
    build, esme = tour.build, tour.devices.esme_eui
    tour.step("18.3", "ResetMeterBalance: balance to 0",
              build.update_meter_balance(esme, reset=True))
    tour.step("18.8",
              "balance 0 p is below the EC threshold: the full ECL (500 p) becomes available",
              build.activate_emergency_credit(esme))
    tour.advance(6 * 3600, "six hours of consumption, paid from emergency credit")
    tour.step("18.8", "what is left of the emergency credit", build.read_meter_balance(esme))
    utrn = make_top_up_utrn(tour.devices.esme_eui64, 1, pence=1000)
    tour.step("top-up", f"UTRN {utrn} (generated: counter 1, GBP 10) repays emergency credit "
              "first", build.top_up_device(esme, utrn))
    tour.step("top-up", "the same UTRN again: refused as a duplicate",
              build.top_up_device(esme, utrn))


def _load_limiting(tour: _Tour) -> None:
    """S1SR 18.37: a threshold above the device maximum refused by the S1SP, then one set."""
    build, esme = tour.build, tour.devices.esme_eui
    tour.step("18.37",
              "LoadLimitPowerThreshold 70000 W is above the device maximum 65535 W: refused "
              "by the S1SP, nothing sent",
              build.update_load_limiting_general_settings(
                  esme, power_threshold_w=70000, period_seconds=300,
                  restoration_period_seconds=600))
    tour.step("18.37",
              "LoadLimitPowerThreshold 5000 W, period 300 s, restoration 600 s: accepted",
              build.update_load_limiting_general_settings(
                  esme, power_threshold_w=5000, period_seconds=300,
                  restoration_period_seconds=600))


def _han_join_window(tour: _Tour) -> None:
    """S1SR 18.62: a join window in whole minutes, rounded up, closing on time."""
    devices = tour.devices
    tour.step("18.62",
              f"add {NEVER_JOINING_EUI} with JoinTimePeriod 90 s -> 2 whole minutes "
              "(rounded up, never shorter)",
              tour.build.update_han_device_log(devices.hub_eui, NEVER_JOINING_EUI,
                                               join_time_period_seconds=90))
    tour.advance(119, "119 s after opening, the 2-minute window is still open")
    tour.direct(devices.hub_address, Command.READ_HAN_ENTRIES, "the join list")
    tour.advance(1, "120 s: exactly 2 minutes, the window closes; that device never joined")
    tour.direct(devices.hub_address, Command.READ_HAN_ENTRIES, "the entry is gone")



def _after_a_day(tour: _Tour) -> None:
    """A day of consumption, then the ESME's registers, configuration, supply, firmware and
    metering data."""
    build, esme = tour.build, tour.devices.esme_eui
    now = tour.advance(86_400, "one day of consumption at the profile's load and tariff")
    tour.step("4.18", "balance after a day of consumption", build.read_meter_balance(esme))
    tour.step("4.3", "every prepayment register", build.read_instantaneous_prepay_values(esme))
    tour.step("4.13", "the thresholds held, in pence x1000 (the Annex C defaults among them)",
              build.read_prepayment_configuration(esme))
    tour.step("7.4", "the supply switch", build.read_supply_status(esme))
    tour.step("11.2", "running firmware after activation", build.read_firmware_version(esme))
    tour.step("metering", "the import energy register (Wh)",
              build.read_instantaneous_import_registers(esme))
    last_half_hour = now - now % 1800
    tour.step("metering", "the last two hours' half-hour consumption (Wh each, stamped at the "
              "start of the half-hour)",
              build.read_active_import_profile_data(
                  esme, start=datetime.fromtimestamp(last_half_hour - 4 * 1800, tz=timezone.utc),
                  end=datetime.fromtimestamp(last_half_hour, tz=timezone.utc)))


def _firmware(tour: _Tour, build_image: Callable[..., bytes]) -> None:
    devices = tour.devices
    payload = bytes(range(256)) * 12  # 3 KiB: a few 1024-byte blocks
    image = build_image("Secure Meters", devices.esme_model, "1.1.0", payload)
    targets = [eui for eui in (devices.esme_eui, devices.gsme_eui) if eui]
    tour.say("Firmware (S1SR 18.63: one transfer at a time per HAN). A transfer to the hub is "
             "already running, started directly on the link:")
    tour.direct(devices.hub_address, Command.FIRMWARE_BEGIN, "holds the HAN's transfer lock",
                image_size_bytes=4096)
    tour.step("18.63",
              f"image {devices.esme_model} 1.1.0 ({len(image)} bytes) to ESME and GSME while "
              "their HAN is busy: refused for both",
              tour.build.update_firmware(targets, image, firmware_version="1.1.0"))
    tour.direct(devices.hub_address, Command.FIRMWARE_VERIFY,
                "the hub's transfer ends (incomplete, so discarded): the lock is free")
    tour.step("18.63",
              "the same 11.1 again: each device answers for itself (the GSME refuses an "
              "image for another model)",
              tour.build.update_firmware(targets, image, firmware_version="1.1.0"))
    tour.step("11.3", "activate the verified image on the ESME now",
              tour.build.activate_firmware(devices.esme_eui,
                                           firmware_hash=hashlib.sha256(payload).digest()))


@contextmanager
def _served_world() -> Iterator[str]:
    """The default profile on a pty, served by a background thread; yields the client path."""
    from emulator.clock import VirtualClock
    from emulator.profile import Profile
    from emulator.serve import ServeLoop
    from emulator.world import EmulatedWorld
    from protocol.client import RealMonotonicClock
    from protocol.transport import PtyPair

    profile = Profile.default()
    start = _profile_start(profile)
    world = EmulatedWorld(profile, VirtualClock(start))
    loop = ServeLoop(world, RealMonotonicClock(), advance_interval_ms=None)
    pair = PtyPair()
    loop.add_stream(pair.server, name="demo pty")
    thread = threading.Thread(target=loop.run, name="secure-emu demo server", daemon=True)
    thread.start()
    try:
        yield pair.client_path
    finally:
        loop.request_stop()
        thread.join(5)


def _profile_start(profile: Any) -> int:
    for holder in (profile, getattr(profile, "world", None)):
        value = getattr(holder, "start_device_time_seconds", None)
        if isinstance(value, int):
            return value
    return DEMO_START_DEVICE_TIME_SECONDS


def run_demo(*, show_xml: bool = False, out: TextIO) -> int:
    """Run the tour, printing the transcript on ``out``; returns the exit status: 0, or 1 if
    a device could not be reached (the transcript says after which step)."""
    from emulator.firmware import build_image
    from emulator.utrn import make_top_up_utrn
    from protocol.client import DeviceClient
    from protocol.s1sp.adapter import S1spAdapter
    from protocol.transport import open_port

    out.write("secure-emu demo: the default profile's devices on a pty, driven through the "
              "S1SP adapter.\nDUIS money is in 1/100000 GBP (1000 = 1 p); the devices hold "
              "whole pence.\n\n")
    with _served_world() as path:
        out.write(f"Serving on {path} (virtual device time).\n")
        with DeviceClient(open_port(path), name=path) as client:
            channel = RecordingChannel(client)
            tour: _Tour | None = None
            try:
                tour = _Tour(client, S1spAdapter(channel), channel, out, show_xml)
                _script(tour, make_top_up_utrn, build_image)
            except ProtocolError as error:
                step = tour.step_number if tour is not None else 0
                out.write(f"\nDemo stopped after step {step}: {error}\n")
                out.flush()
                return 1
    out.write("\nDemo finished.\n")
    out.flush()
    return 0
