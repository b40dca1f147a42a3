"""firmware_images/make_images.py reproduces the committed sample images byte for byte."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest

from emulator.firmware import FirmwareImageRefusedError, verify_image
from protocol.apdu import Status

IMAGES_DIR = Path(__file__).resolve().parents[2] / "firmware_images"
SCRIPT = IMAGES_DIR / "make_images.py"


def _load_script() -> ModuleType:
    spec = importlib.util.spec_from_file_location("make_images", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while it loads
    try:
        spec.loader.exec_module(module)
    finally:
        del sys.modules[spec.name]
    return module


def test_script_reproduces_every_committed_image_byte_for_byte(tmp_path: Path) -> None:
    written = _load_script().write_images(tmp_path)
    committed = sorted(path.name for path in IMAGES_DIR.glob("*.sefw"))
    assert sorted(path.name for path in written) == committed
    for path in written:
        assert path.read_bytes() == (IMAGES_DIR / path.name).read_bytes(), path.name


def test_script_run_from_the_command_line_writes_into_the_given_directory(
        tmp_path: Path) -> None:
    subprocess.run([sys.executable, str(SCRIPT), str(tmp_path)], check=True,
                   capture_output=True, timeout=60)
    esme = "esme_liberty100_1.1.0.sefw"
    assert (tmp_path / esme).read_bytes() == (IMAGES_DIR / esme).read_bytes()


COMMITTED_IMAGES = [
    "bad_hash_liberty100_1.1.0.sefw",
    "bad_magic_liberty100_1.1.0.sefw",
    "bad_truncated_liberty100_1.1.0.sefw",
    "bad_wrong_model_liberty200_1.1.0.sefw",
    "chf_secure-chf_3.1.0.sefw",
    "esme_liberty100_1.1.0.sefw",
    "gsme_secure-gsme_2.1.0.sefw",
]


def test_every_image_is_small_and_spans_several_blocks() -> None:
    paths = sorted(IMAGES_DIR.glob("*.sefw"))
    assert [path.name for path in paths] == COMMITTED_IMAGES  # none missing: never vacuous
    for path in paths:
        assert 2 * 1024 <= path.stat().st_size <= 8 * 1024, path.name


@pytest.mark.parametrize(("file_name", "model", "expected"), [
    ("esme_liberty100_1.1.0.sefw", "LIBERTY100", Status.SUCCESS),
    ("gsme_secure-gsme_2.1.0.sefw", "SECURE-GSME", Status.SUCCESS),
    ("chf_secure-chf_3.1.0.sefw", "SECURE-CHF", Status.SUCCESS),
    ("esme_liberty100_1.1.0.sefw", "SECURE-GSME", Status.FIRMWARE_WRONG_MODEL),
    ("bad_wrong_model_liberty200_1.1.0.sefw", "LIBERTY100", Status.FIRMWARE_WRONG_MODEL),
    ("bad_hash_liberty100_1.1.0.sefw", "LIBERTY100", Status.FIRMWARE_BAD_HASH),
    ("bad_truncated_liberty100_1.1.0.sefw", "LIBERTY100", Status.FIRMWARE_BAD_LENGTH),
    ("bad_magic_liberty100_1.1.0.sefw", "LIBERTY100", Status.FIRMWARE_BAD_HEADER),
])
def test_each_committed_image_verifies_as_its_readme_says(
        file_name: str, model: str, expected: Status) -> None:
    data = (IMAGES_DIR / file_name).read_bytes()
    try:
        verify_image(data, "Secure Meters", model)
        outcome = Status.SUCCESS
    except FirmwareImageRefusedError as error:
        outcome = error.status
    assert outcome is expected
