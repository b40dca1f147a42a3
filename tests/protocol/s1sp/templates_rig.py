"""A rig on the built-in ``dcc-duis-templates`` profile, whose device IDs are those of the DCC's
DUIS request templates (-A0 ESME, -A1 GSME, -A2 comms hub, -A3 GPF, -A4 PPMID), for the
template-shaped fixtures in ``tests/fixtures/duis/dcc_templates/``. Virtual time, real APDU
bytes through :class:`protocol.s1sp.channel.InProcessChannel`."""

from __future__ import annotations

from datetime import datetime, timezone

from emulator.clock import VirtualClock
from emulator.profile import Profile, built_in_profile_text
from emulator.world import EmulatedWorld
from protocol.apdu import MANAGEMENT_SERVER_ADDRESS, Request, decode_apdu
from protocol.s1sp.adapter import S1spAdapter
from protocol.s1sp.channel import InProcessChannel
from tests.protocol.s1sp.conftest import FIXTURES

TEMPLATE_FIXTURES = FIXTURES / "dcc_templates"
TEMPLATES_ESME_EUI64 = bytes.fromhex("00DB1234567890A0")
TEMPLATES_GSME_EUI64 = bytes.fromhex("00DB1234567890A1")
TEMPLATES_HUB_EUI64 = bytes.fromhex("00DB1234567890A2")
TEMPLATES_GPF_EUI64 = bytes.fromhex("00DB1234567890A3")
TEMPLATES_PPMID_EUI64 = bytes.fromhex("00DB1234567890A4")


def template_fixture_xml(name: str) -> bytes:
    return (TEMPLATE_FIXTURES / f"{name}.xml").read_bytes()


class TemplatesRig:
    """The dcc-duis-templates world on a virtual clock, and an adapter whose response clock is
    the world's device time."""

    def __init__(self, **adapter_options: object) -> None:
        profile = Profile.from_toml_bytes(
            built_in_profile_text("dcc-duis-templates").encode(), source="dcc-duis-templates")
        self.clock = VirtualClock(profile.start_device_time_seconds)
        self.world = EmulatedWorld(profile, self.clock)
        self.channel = InProcessChannel(self.world.handle_apdu)
        self.adapter = S1spAdapter(self.channel, response_clock=self.now,
                                   **adapter_options)  # type: ignore[arg-type]

    def now(self) -> datetime:
        return datetime.fromtimestamp(self.clock.device_time_seconds(), tz=timezone.utc)

    def address(self, eui64: bytes) -> int:
        return self.world.device_by_eui64(eui64).server_address

    def submit(self, xml: bytes | str) -> str:
        return self.adapter.submit(xml)

    def requests(self) -> list[tuple[int, Request]]:
        decoded = [(address, decode_apdu(apdu)) for address, apdu, _ in self.channel.exchanges]
        return [(address, request) for address, request in decoded
                if isinstance(request, Request)]

    def sent_commands(self) -> list:
        """Commands sent to devices (directory reads left out)."""
        return [request.command for address, request in self.requests()
                if address != MANAGEMENT_SERVER_ADDRESS]
