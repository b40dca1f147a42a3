"""The SR record and registry, pinned: what each incomplete record is refused for (the message
names the SR and the fault), the derived names and CommandVariants, and the registry's order
(numeric, part by part), its refusal of a twice-defined variant and its read-only mapping."""

from __future__ import annotations

import dataclasses
import re
from typing import Any

import pytest

from protocol.apdu import DeviceType
from protocol.s1sp.duis_xml import EmptyBody
from protocol.s1sp.service_requests import SERVICE_REQUESTS, Addressee, build_registry
from protocol.s1sp.service_requests.record import ServiceRequest, parse_empty_body

READ_SUPPLY = SERVICE_REQUESTS["7.4"]  # non-critical, CommandVariants 1-3, meters


def _record(**changes: Any) -> ServiceRequest:
    return dataclasses.replace(READ_SUPPLY, **changes)


@pytest.mark.parametrize(("changes", "message"), [
    ({"builder_name": "_private"},
     "SR '7.4': builder name '_private' is not a public method name"),
    ({"builder_name": "read supply"},
     "SR '7.4': builder name 'read supply' is not a public method name"),
    ({"name": "!!!", "builder_name": ""},
     "SR '7.4': builder name '' is not a public method name"),
    ({"service_reference_variant": "7"},
     "SR '7': not a ServiceReferenceVariant such as 6.4.1"),
    ({"service_reference_variant": "6.4.1.1"},
     "SR '6.4.1.1': not a ServiceReferenceVariant such as 6.4.1"),
    ({"service_reference_variant": "7.4 "},
     "SR '7.4 ': not a ServiceReferenceVariant such as 6.4.1"),
    ({"service_reference_variant": "7.x"},
     "SR '7.x': not a ServiceReferenceVariant such as 6.4.1"),
    ({"name": ""}, "SR '7.4': a name and at least one body element name are needed"),
    ({"body_names": ()}, "SR '7.4': a name and at least one body element name are needed"),
    ({"body_names": ("ReadSupplyStatus", "")},
     "SR '7.4': a name and at least one body element name are needed"),
    ({"command_variants": frozenset()},
     "SR '7.4': CommandVariants must be among [1, 2, 3, 4, 5, 6, 8]"),
    ({"command_variants": frozenset({1, 7})},
     "SR '7.4': CommandVariants must be among [1, 2, 3, 4, 5, 6, 8]"),
    ({"addressee": Addressee.DCC},
     "SR '7.4': CommandVariant 8 is for, and only for, DCC-addressed SRs"),
    ({"command_variants": frozenset({8})},
     "SR '7.4': CommandVariant 8 is for, and only for, DCC-addressed SRs"),
    ({"command_variants": frozenset({1, 2, 3, 8})},
     "SR '7.4': CommandVariant 8 is for, and only for, DCC-addressed SRs"),
    ({"addressee": Addressee.DCC, "command_variants": frozenset({1, 8})},
     "SR '7.4': CommandVariant 8 is for, and only for, DCC-addressed SRs"),
    ({"critical": True}, "SR '7.4': its usual CommandVariant 4 is not allowed"),
    ({"command_variants": frozenset({2, 3})},
     "SR '7.4': its usual CommandVariant 1 is not allowed"),
    ({"valid_device_types": frozenset()},
     "SR '7.4': it must be valid for at least one device type"),
    ({"handler": None},
     "SR '7.4': its handler, body parser and body writer must be callables"),
    ({"parse_body": "parse"},
     "SR '7.4': its handler, body parser and body writer must be callables"),
    ({"write_body": None},
     "SR '7.4': its handler, body parser and body writer must be callables"),
])
def test_an_incomplete_record_is_refused_naming_the_sr_and_the_fault(
        changes: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=f"^{re.escape(message)}$"):
        _record(**changes)


@pytest.mark.parametrize("variant", ["7.4", "6.4.1", "10.11", "11.3"])
def test_two_or_three_numeric_parts_make_a_variant(variant: str) -> None:
    assert _record(service_reference_variant=variant).service_reference_variant == variant


@pytest.mark.parametrize(("name", "builder_name"), [
    ("Read HAN Supply (Status)", "read_han_supply_status"),
    ("  Top-Up  Device 2!", "top_up_device_2"),
    ("GBCS v1.0 Hash", "gbcs_v1_0_hash"),
])
def test_a_builder_name_is_the_name_lower_cased_with_runs_of_other_characters_one_underscore(
        name: str, builder_name: str) -> None:
    assert _record(name=name, builder_name="").builder_name == builder_name


def test_a_given_builder_name_is_kept() -> None:
    assert _record(name="Read Supply Status", builder_name="supply_status").builder_name == \
        "supply_status"


def test_a_record_is_valid_for_critical_dcc_and_every_device_type_combination() -> None:
    critical = _record(critical=True, command_variants=frozenset({4, 5, 6}))
    assert critical.default_command_variant == 4
    dcc = _record(addressee=Addressee.DCC, command_variants=frozenset({8}))
    assert dcc.default_command_variant == 8
    tolerant = _record(critical=True, command_variants=frozenset({1, 2, 3, 4, 5, 6}))
    assert tolerant.default_command_variant == 4
    assert _record(valid_device_types=frozenset({DeviceType.PPMID})).valid_device_types == \
        frozenset({DeviceType.PPMID})


def test_the_derived_names_and_usual_command_variants() -> None:
    assert READ_SUPPLY.default_command_variant == 1
    assert READ_SUPPLY.body_name == "ReadSupplyStatus"
    assert READ_SUPPLY.service_reference == "7.4"
    assert SERVICE_REQUESTS["6.4.1"].service_reference == "6.4"
    assert SERVICE_REQUESTS["2.1"].body_name == "UpdatePrepayConfiguration"
    assert SERVICE_REQUESTS["1.5"].default_command_variant == 4
    assert SERVICE_REQUESTS["11.1"].default_command_variant == 8


def test_the_default_body_parser_gives_an_empty_body() -> None:
    assert parse_empty_body(None, "ReadSupplyStatus") == EmptyBody()  # type: ignore[arg-type]


def test_the_registry_orders_variants_numerically_part_by_part() -> None:
    variants = ["10.1", "2.10", "2.9", "6.4.2", "6.4.10", "6.4", "1.5"]
    registry = build_registry(_record(service_reference_variant=v) for v in variants)
    assert list(registry) == ["1.5", "2.9", "2.10", "6.4", "6.4.2", "6.4.10", "10.1"]
    assert registry["2.10"].service_reference_variant == "2.10"


def test_a_variant_defined_twice_is_refused_naming_both_records() -> None:
    records = [_record(service_reference_variant="7.9", name="First One"),
               _record(service_reference_variant="7.8", name="Other"),
               _record(service_reference_variant="7.9", name="Second One")]
    with pytest.raises(ValueError,
                       match=r"^SR 7\.9 is defined twice: 'First One' and 'Second One'$"):
        build_registry(records)


def test_the_registry_cannot_be_changed() -> None:
    registry = build_registry([READ_SUPPLY])
    with pytest.raises(TypeError):
        registry["7.5"] = READ_SUPPLY  # type: ignore[index]
    with pytest.raises(TypeError):
        SERVICE_REQUESTS["7.5"] = READ_SUPPLY  # type: ignore[index]
