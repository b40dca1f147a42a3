"""SR 8.11 Remove succeeds for a device the hub has on its HAN (the fixture alone is refused)."""

from __future__ import annotations

from protocol.s1sp.duis import parse_duis_request
from tests.protocol.s1sp.conftest import Rig, fixture_xml


def test_remove_after_add_is_i0_and_a_second_remove_is_refused_as_not_found() -> None:
    rig = Rig()
    added = rig.adapter.submit_request(parse_duis_request(fixture_xml("8.11_add_han_device")))
    removed = rig.adapter.submit_request(
        parse_duis_request(fixture_xml("8.11_remove_han_device")))
    again = rig.adapter.submit_request(parse_duis_request(fixture_xml("8.11_remove_han_device")))
    assert (added.response_code, removed.response_code) == ("I0", "I0")
    assert again.response_code == "E-S1SR"
    assert "HAN_REMOVE_DEVICE: HAN_DEVICE_NOT_FOUND" in (again.error_reason or "")
