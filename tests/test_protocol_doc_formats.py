"""docs/protocol.md sections 14 (UTRN) and 15 (SEFW image) are enough to make both, and true.

The worked examples are checked both ways against the running code: the doc's UTRN is what
emulator.utrn makes for the stated inputs and parses back to them, and every intermediate value
is recomputed here from the doc's recipe alone (its HMAC key, its steps, its Verhoeff tables);
the doc's image bytes parse with emulator.firmware's Construct definition, rebuild identically,
are what build_image makes, and the doc's layout table is the Construct's. Reads one file.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from pathlib import Path

import pytest
from construct import Container

from emulator.firmware import IMAGE_HEADER, build_image, parse_image_header, verify_image
from emulator.utrn import ParsedUtrn, UtrnValueClass, make_utrn, parse_utrn

DOC_TEXT = (Path(__file__).resolve().parents[1] / "docs" / "protocol.md").read_text("utf-8")
UTRN_SECTION = DOC_TEXT.split("\n## 14. UTRN layout", 1)[1].split("\n## ", 1)[0]
SEFW_SECTION = DOC_TEXT.split("\n## 15. SEFW firmware images", 1)[1].split("\n## ", 1)[0]
DOC_UTRN_KEY = b"secure-emu UTRN binding key v1"


def _block(section: str, language: str) -> str:
    blocks = re.findall(rf"^```{language}\n(.*?)^```", section, re.MULTILINE | re.DOTALL)
    assert len(blocks) == 1, language
    return str(blocks[0])


def _assignments(block: str) -> dict[str, str]:
    pairs = (line.split(" = ", 1) for line in block.splitlines() if line.strip())
    return {name.strip(): value.strip() for name, value in pairs}


UTRN_EXAMPLE = _assignments(_block(UTRN_SECTION, "utrn-example"))
VERHOEFF = {name: [int(x) for x in value.split()]
            for name, value in _assignments(_block(UTRN_SECTION, "verhoeff")).items()}
SEFW_FIELDS = [(label.strip(), bytes.fromhex(hex_part)) for hex_part, _, label in
               (line.partition("#") for line in _block(SEFW_SECTION, "sefw-example").splitlines())]
SEFW_IMAGE = b"".join(data for _, data in SEFW_FIELDS)


def _hex(name: str) -> bytes:
    return bytes.fromhex(UTRN_EXAMPLE[name])


# --------------------------------------------------------------------------------------------
# UTRN
# --------------------------------------------------------------------------------------------


def _doc_check_digit(digits: str) -> int:
    """Section 14's Verhoeff recipe, with the doc's tables."""
    c = 0
    for i, x in enumerate(int(digit) for digit in reversed(digits)):
        c = VERHOEFF[f"d[{c}]"][VERHOEFF[f"p[{(i + 1) % 8}]"][x]]
    return VERHOEFF["inv"][c]


def _doc_utrn(meter_eui64: bytes, counter: int, value_class: int, value: int) -> str:
    """Section 14's six steps, written from the doc alone."""
    payload = (counter << 14 | value_class << 13 | value).to_bytes(5, "big")
    tag = hmac.new(DOC_UTRN_KEY, meter_eui64 + payload, hashlib.sha256).digest()[:3]
    mask_digest = hmac.new(DOC_UTRN_KEY, b"mask" + meter_eui64 + tag, hashlib.sha256).digest()
    mask = int.from_bytes(mask_digest[:5], "big") & 0x3FFFFFFFFF
    token = int.from_bytes(tag, "big") << 38 | (int.from_bytes(payload, "big") ^ mask)
    digits = f"{token:019d}"
    return digits + str(_doc_check_digit(digits))


def test_doc_states_the_utrn_key_in_ascii_and_hex() -> None:
    assert f"`{DOC_UTRN_KEY.decode('ascii')}`" in UTRN_SECTION
    assert f"(`{DOC_UTRN_KEY.hex(' ').upper()}`)" in UTRN_SECTION
    assert f"the {len(DOC_UTRN_KEY)} ASCII bytes" in UTRN_SECTION


def test_doc_utrn_example_is_what_make_utrn_makes_and_parses_back_to_its_inputs() -> None:
    meter = _hex("meter_eui64")
    assert meter == bytes.fromhex("00DB1234567890A1")
    counter, value_class, value = (int(UTRN_EXAMPLE[k]) for k in ("counter", "value_class",
                                                                   "value"))
    assert (counter, value_class, value) == (1, 1, 10)
    assert make_utrn(meter, counter, value_class, value) == UTRN_EXAMPLE["utrn"]
    parsed = parse_utrn(UTRN_EXAMPLE["utrn"], meter)
    assert parsed == ParsedUtrn(counter=1, value_class=UtrnValueClass.POUNDS, value=10)
    assert parsed.value_pence == 1000
    assert UTRN_EXAMPLE["utrn"] == "24177270675886468738"


def test_doc_utrn_example_intermediate_values_follow_the_doc_recipe() -> None:
    meter, payload = _hex("meter_eui64"), _hex("payload")
    assert payload == (1 << 14 | 1 << 13 | 10).to_bytes(5, "big")
    assert _hex("tag_hmac_message") == meter + payload
    assert _hex("tag_hmac") == hmac.new(DOC_UTRN_KEY, meter + payload, hashlib.sha256).digest()
    assert _hex("tag") == _hex("tag_hmac")[:3]
    assert _hex("mask_hmac_message") == b"mask" + meter + _hex("tag")
    assert _hex("mask_hmac") == hmac.new(DOC_UTRN_KEY, _hex("mask_hmac_message"),
                                         hashlib.sha256).digest()
    mask = int.from_bytes(_hex("mask_hmac")[:5], "big") & 0x3FFFFFFFFF
    assert _hex("mask") == mask.to_bytes(5, "big")
    masked = int.from_bytes(payload, "big") ^ mask
    assert _hex("masked_payload") == masked.to_bytes(5, "big")
    token = int.from_bytes(_hex("tag"), "big") << 38 | masked
    assert int(UTRN_EXAMPLE["token"]) == token
    assert UTRN_EXAMPLE["utrn"] == f"{token:019d}" + str(_doc_check_digit(f"{token:019d}"))
    wire = " ".join(f"{ord(c):02X}" for c in UTRN_EXAMPLE["utrn"])
    assert f"the 20 bytes `{wire}`" in UTRN_SECTION


@pytest.mark.parametrize(("meter_hex", "counter", "value_class", "value"), [
    ("00DB1234567890A1", 0, 0, 0),
    ("00DB1234567890A1", 16777215, 1, 8191),
    ("00DB1234567890A2", 42, 0, 2500),
    ("0123456789ABCDEF", 999, 1, 7),
    ("FFFFFFFFFFFFFFFF", 1 << 23, 0, 1 << 12),
])
def test_doc_recipe_alone_makes_the_utrn_the_code_makes(meter_hex: str, counter: int,
                                                       value_class: int, value: int) -> None:
    meter = bytes.fromhex(meter_hex)
    utrn = _doc_utrn(meter, counter, value_class, value)
    assert utrn == make_utrn(meter, counter, value_class, value)
    assert parse_utrn(utrn, meter) == ParsedUtrn(counter, UtrnValueClass(value_class), value)


def test_doc_verhoeff_tables_give_the_check_digit_and_validate_whole_numbers() -> None:
    assert _doc_check_digit("236") == 3  # the textbook example: 2363
    for number in ("0", "12345", "2417727067588646873", "9999999999999999999"):
        digits = number + str(_doc_check_digit(number))
        c = 0
        for i, x in enumerate(int(digit) for digit in reversed(digits)):
            c = VERHOEFF[f"d[{c}]"][VERHOEFF[f"p[{i % 8}]"][x]]
        assert c == 0, digits


# --------------------------------------------------------------------------------------------
# SEFW image
# --------------------------------------------------------------------------------------------


def test_doc_image_is_what_build_image_makes_and_passes_the_esme_checks() -> None:
    payload = b"secure-emu demo!"
    assert len(SEFW_IMAGE) == 121
    assert build_image("Secure Meters", "LIBERTY100", "1.1.0", payload) == SEFW_IMAGE
    header = verify_image(SEFW_IMAGE, "Secure Meters", "LIBERTY100")
    assert header == parse_image_header(SEFW_IMAGE)
    assert (header.version, header.payload_length_bytes) == ("1.1.0", 16)
    assert header.payload_sha256 == hashlib.sha256(payload).digest()


def test_doc_image_parses_with_the_construct_and_rebuilds_identically() -> None:
    size = IMAGE_HEADER.sizeof()
    assert size == 105
    parsed = IMAGE_HEADER.parse(SEFW_IMAGE[:size])
    assert (parsed.header_format_version, parsed.manufacturer, parsed.model, parsed.version,
            parsed.payload_length_bytes) == (1, "Secure Meters", "LIBERTY100", "1.1.0", 16)
    assert IMAGE_HEADER.build(parsed) == SEFW_IMAGE[:size]
    assert SEFW_IMAGE[size:] == b"secure-emu demo!"


def test_doc_image_lines_are_the_construct_fields_in_order() -> None:
    fields = [(sub.name, sub.sizeof()) for sub in IMAGE_HEADER.subcons]
    assert [(label, len(data)) for label, data in SEFW_FIELDS] == [*fields, ("payload", 16)]
    built = IMAGE_HEADER.build(Container(
        header_format_version=1, manufacturer="Secure Meters", model="LIBERTY100",
        version="1.1.0", payload_length_bytes=16,
        payload_sha256=hashlib.sha256(b"secure-emu demo!").digest()))
    offset = 0
    for label, data in SEFW_FIELDS[:-1]:
        assert built[offset:offset + len(data)] == data, label
        offset += len(data)


def test_doc_layout_table_gives_each_construct_field_its_offset_and_size() -> None:
    rows = re.findall(r"^\| (\d+) \| (\d+|n) \| `?(\w+)`? \|", SEFW_SECTION, re.MULTILINE)
    offset, expected = 0, []
    for sub in IMAGE_HEADER.subcons:
        expected.append((str(offset), str(sub.sizeof()), sub.name))
        offset += sub.sizeof()
    assert rows == [*expected, (str(offset), "n", "payload")]
