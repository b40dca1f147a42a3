"""protocol.s1sp.annex_c: one table of static defaults, visible and overridable."""

from __future__ import annotations

from pathlib import Path

import pytest

from protocol.apdu import PREPAYMENT_DEFAULTS
from protocol.s1sp.annex_c import AnnexCTable, format_annex_c_table
from protocol.s1sp.errors import AnnexCError


def test_table_fields_are_exactly_the_set_payment_mode_defaults_struct() -> None:
    fields = AnnexCTable().as_defaults_fields()
    assert list(fields) == [sub.name for sub in PREPAYMENT_DEFAULTS.subcons]
    assert PREPAYMENT_DEFAULTS.parse(PREPAYMENT_DEFAULTS.build(fields)) == fields


def test_load_overrides_only_the_keys_given(tmp_path: Path) -> None:
    path = tmp_path / "annex_c.toml"
    path.write_text("emergency_credit_limit_pence = 1000\nkeypad_lock_timeout_seconds = 120\n")
    table = AnnexCTable.load(path)
    assert table.emergency_credit_limit_pence == 1000
    assert table.keypad_lock_timeout_seconds == 120
    assert table.utrn_type == AnnexCTable().utrn_type


def test_load_accepts_an_annex_c_table_section(tmp_path: Path) -> None:
    path = tmp_path / "annex_c.toml"
    path.write_text("[annex_c]\nutrn_type = 2\n")
    assert AnnexCTable.load(path).utrn_type == 2


def test_unknown_key_is_a_clear_error_naming_it(tmp_path: Path) -> None:
    path = tmp_path / "annex_c.toml"
    path.write_text("emergency_credit_limit = 1000\n")
    with pytest.raises(AnnexCError, match=r"unknown Annex C key.*emergency_credit_limit;"):
        AnnexCTable.load(path)


@pytest.mark.parametrize("line", ["utrn_type = 256", "keypad_lock_timeout_seconds = -1",
                                  "max_meter_balance_pence = 2.5", "utrn_type = true"])
def test_out_of_range_or_non_integer_value_is_refused(tmp_path: Path, line: str) -> None:
    path = tmp_path / "annex_c.toml"
    path.write_text(line + "\n")
    with pytest.raises(AnnexCError):
        AnnexCTable.load(path)


def test_invalid_toml_and_missing_file_are_clear_errors(tmp_path: Path) -> None:
    path = tmp_path / "annex_c.toml"
    path.write_text("utrn_type = \n")
    with pytest.raises(AnnexCError, match="not valid TOML"):
        AnnexCTable.load(path)
    with pytest.raises(AnnexCError, match="cannot read"):
        AnnexCTable.load(tmp_path / "missing.toml")


def test_format_lists_every_value_and_marks_overrides() -> None:
    text = format_annex_c_table(AnnexCTable(utrn_type=2))
    lines = text.splitlines()[1:]
    for line, (name, value) in zip(lines, AnnexCTable(utrn_type=2).as_defaults_fields().items(),
                                   strict=True):
        assert line.split()[:2] == [name, str(value)]
    assert [line.split()[0] for line in lines if "(default" in line] == ["utrn_type"]
