"""protocol.s1sp.service_requests: the registry is the only list of Service Requests. Every
record is complete, every handler is reached through the adapter, every fixture maps to a
record, future-datable is what decides whether ExecutionDateTime is read, the request builder's
methods are the records' writers (a record is all a new SR's builder needs), and no other
module holds a per-SR table."""

from __future__ import annotations

import ast
import dataclasses
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from protocol.s1sp import adapter as adapter_module
from protocol.s1sp import builders as builders_module
from protocol.s1sp.builders import DuisRequestBuilder
from protocol.s1sp.duis import parse_duis_request
from protocol.s1sp.duis_xml import EmptyBody, write_empty_body
from protocol.s1sp.service_requests import (
    FAMILIES,
    SERVICE_REQUESTS,
    Addressee,
    ServiceRequest,
    build_registry,
)
from protocol.s1sp.service_requests.firmware import FirmwareActivation
from protocol.s1sp.service_requests.load_limiting import LoadLimitSettingsUpdate
from protocol.s1sp.service_requests.prepayment import (
    PaymentModeUpdate,
    PrepayConfigurationUpdate,
)
from protocol.s1sp.service_requests.record import parse_empty_body
from tests.protocol.s1sp.conftest import FIXTURES, Rig, fixture_xml

ROOT = Path(__file__).resolve().parents[3]
FIXTURE_FILES = sorted(FIXTURES.glob("*.xml"))
SUPPORTED = ("1.1.1", "1.2.1", "1.5", "1.6", "2.1", "2.2", "2.3", "2.5", "4.1.1", "4.1.2",
             "4.1.4", "4.3", "4.6.1", "4.8.1", "4.10", "4.11.1", "4.12.1", "4.13", "4.14", "4.15",
             "4.16", "4.17", "4.18", "6.4.1", "6.4.2", "6.11", "7.1", "7.2", "7.3", "7.4",
             "8.11", "11.1", "11.2", "11.3")


def test_the_registry_holds_every_supported_sr_once_in_variant_order() -> None:
    assert tuple(SERVICE_REQUESTS) == SUPPORTED
    from_families = [record.service_reference_variant
                     for family in FAMILIES for record in family.RECORDS]
    assert sorted(from_families) == sorted(SUPPORTED)


@pytest.mark.parametrize("variant", SUPPORTED)
def test_every_record_is_complete(variant: str) -> None:
    record = SERVICE_REQUESTS[variant]
    assert record.service_reference_variant == variant
    assert record.name and record.body_names and all(record.body_names)
    assert record.command_variants and record.valid_device_types
    assert callable(record.handler) and callable(record.parse_body)
    assert callable(record.write_body) and record.builder_name.isidentifier()
    # a body with parameters is both parsed and written; an empty one neither
    assert (record.parse_body is parse_empty_body) == (record.write_body is write_empty_body)
    assert record.default_command_variant in record.command_variants
    assert variant.startswith(record.service_reference)


def test_only_11_1_is_addressed_to_the_dcc_and_future_datable_srs_are_the_six() -> None:
    assert [v for v, r in SERVICE_REQUESTS.items() if r.addressee is Addressee.DCC] == ["11.1"]
    assert [v for v, r in SERVICE_REQUESTS.items() if r.future_datable] == \
        ["1.1.1", "1.2.1", "1.6", "2.1", "6.4.1", "11.3"]


def test_an_incomplete_record_is_refused_when_built() -> None:
    record = SERVICE_REQUESTS["7.4"]
    for broken in ({"body_names": ()}, {"name": ""}, {"command_variants": frozenset()},
                   {"command_variants": frozenset({9})}, {"valid_device_types": frozenset()},
                   {"service_reference_variant": "7"}, {"handler": None},
                   {"addressee": Addressee.DCC}, {"critical": True}, {"write_body": None},
                   {"builder_name": "_private"}, {"builder_name": "read supply"}):
        with pytest.raises(ValueError):
            dataclasses.replace(record, **broken)


def test_a_builder_name_defaults_to_the_name_in_snake_case() -> None:
    record = dataclasses.replace(SERVICE_REQUESTS["7.4"], name="Read HAN Supply (Status)",
                                 builder_name="")
    assert record.builder_name == "read_han_supply_status"


def test_the_builders_methods_are_the_records_and_nothing_else() -> None:
    # (a mutation run adds each mutant of a method as a class attribute named `xǁ...__mutmut_N`)
    methods = {name for name in vars(DuisRequestBuilder)
               if not name.startswith("_") and "__mutmut_" not in name}
    assert methods == {record.builder_name for record in SERVICE_REQUESTS.values()}
    assert len(methods) == len(SERVICE_REQUESTS)


def test_a_new_record_needs_nothing_more_for_its_builder_method(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """What the builder module does for every record, done for one it has never seen."""
    record = dataclasses.replace(
        SERVICE_REQUESTS["6.4.1"], service_reference_variant="6.4.9",
        name="Update Load Limiting Again", builder_name="")
    monkeypatch.setattr(builders_module, "SERVICE_REQUESTS",
                        {**SERVICE_REQUESTS, "6.4.9": record})
    method = builders_module._builder_method(record)
    assert method.__name__ == "update_load_limiting_again"
    xml = method(DuisRequestBuilder(), "00-DB-12-34-56-78-90-A1", power_threshold_w=100,
                 period_seconds=60, restoration_period_seconds=90)
    assert "<sr:ServiceReferenceVariant>6.4.9</sr:ServiceReferenceVariant>" in xml
    assert "<sr:LoadLimitRestorationPeriod>90</sr:LoadLimitRestorationPeriod>" in xml


def test_a_variant_defined_twice_is_refused() -> None:
    record = SERVICE_REQUESTS["7.4"]
    with pytest.raises(ValueError, match=r"7\.4 is defined twice"):
        build_registry([record, dataclasses.replace(record, name="Read Supply Status again")])


@pytest.mark.parametrize("path", FIXTURE_FILES, ids=lambda path: path.stem)
def test_every_fixture_maps_to_a_record(path: Path) -> None:
    variant = path.name.split("_")[0]
    assert variant in SERVICE_REQUESTS
    assert parse_duis_request(path.read_bytes()).service_reference_variant == variant


def test_every_handler_is_reached_through_the_adapter_by_its_fixtures(
        monkeypatch: pytest.MonkeyPatch) -> None:
    reached: set[str] = set()

    def spy(variant: str, handler: Callable[..., Any]) -> Callable[..., Any]:
        def wrapped(ctx: Any, body: Any) -> Any:
            reached.add(variant)
            return handler(ctx, body)
        return wrapped

    monkeypatch.setattr(adapter_module, "SERVICE_REQUESTS", {
        variant: dataclasses.replace(record, handler=spy(variant, record.handler))
        for variant, record in SERVICE_REQUESTS.items()})
    for path in FIXTURE_FILES:
        Rig().submit(path.read_bytes())
    assert reached == set(SUPPORTED)


def test_execution_date_time_is_read_for_future_datable_srs() -> None:
    bodies = [parse_duis_request(fixture_xml(name)).body for name in (
        "1.6_prepayment_future_dated", "2.1_prepay_configuration_future_dated",
        "6.4.1_load_limit_settings_future_dated", "11.3_activate_firmware_future_dated")]
    assert [type(body) for body in bodies] == [PaymentModeUpdate, PrepayConfigurationUpdate,
                                               LoadLimitSettingsUpdate, FirmwareActivation]
    assert [body.execution.execution_time_seconds for body in bodies  # type: ignore[attr-defined]
            ] == [1894698000] * 4


def test_execution_date_time_is_not_read_for_an_sr_that_is_not_future_datable() -> None:
    text = fixture_xml("7.1_enable_supply").decode().replace(
        "<sr:EnableSupply/>",
        "<sr:EnableSupply><sr:ExecutionDateTime>2030-01-15T09:00:00Z</sr:ExecutionDateTime>"
        "</sr:EnableSupply>")
    assert parse_duis_request(text).body == EmptyBody()


def _modules_outside_the_registry() -> list[Path]:
    registry = ROOT / "protocol" / "s1sp" / "service_requests"
    return [path for folder in ("protocol", "emulator") for path in (ROOT / folder).rglob("*.py")
            if registry not in path.parents]


def _string_constants(path: Path) -> list[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    return [node.value for node in ast.walk(tree)
            if isinstance(node, ast.Constant) and isinstance(node.value, str)]


def _tables_of_variants(path: Path) -> list[int]:
    """Lines of the collection literals (dict keys, sets, lists, tuples) naming two or more SR
    variants: the shape of a per-SR table."""
    lines = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Dict):
            elements = [key for key in node.keys if key is not None]
        elif isinstance(node, (ast.Set, ast.List, ast.Tuple)):
            elements = list(node.elts)
        else:
            continue
        variants = [e.value for e in elements
                    if isinstance(e, ast.Constant) and e.value in SUPPORTED]
        if len(variants) >= 2:
            lines.append(node.lineno)
    return lines


def test_no_module_outside_the_registry_holds_a_per_sr_table() -> None:
    tables = {str(path.relative_to(ROOT)): _tables_of_variants(path)
              for path in _modules_outside_the_registry()}
    assert {path: lines for path, lines in tables.items() if lines} == {}


def test_the_table_finder_finds_the_tables_the_registry_replaced(tmp_path: Path) -> None:
    """The check above can fail: the old shapes (a dict keyed by variant, a set of variants)
    are found; a lone variant is not a table."""
    sample = tmp_path / "sample.py"
    sample.write_text('HANDLERS = {"1.5": 1, "7.1": 2}\nCRITICAL = {"1.5", "2.1"}\n'
                      'ONE = frozenset({"11.1"})\n', encoding="utf-8")
    assert _tables_of_variants(sample) == [1, 2]


def test_each_variant_is_named_only_by_its_own_record() -> None:
    for family in FAMILIES:
        named = [value for value in _string_constants(Path(family.__file__))
                 if value in SUPPORTED]
        assert sorted(named) == sorted(record.service_reference_variant
                                       for record in family.RECORDS), family.__name__


def test_records_are_service_requests_and_families_hold_nothing_else_in_records() -> None:
    for family in FAMILIES:
        assert family.RECORDS and all(isinstance(r, ServiceRequest) for r in family.RECORDS)
