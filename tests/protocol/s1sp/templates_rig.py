"""A rig on the built-in ``dcc-duis-templates`` profile, whose device IDs are those of the DCC's
DUIS request templates (-A0 ESME, -A1 GSME, -A2 comms hub, -A3 GPF, -A4 PPMID), for the
template-shaped fixtures in ``tests/fixtures/duis/dcc_templates/``. Virtual time, real APDU
bytes through :class:`protocol.s1sp.channel.InProcessChannel`."""

from __future__ import annotations

from emulator.clock import VirtualClock
from emulator.profile import Profile, built_in_profile_text
from emulator.world import EmulatedWorld
from protocol.s1sp.adapter import S1spAdapter
from protocol.s1sp.channel import InProcessChannel
from tests.protocol.s1sp.conftest import FIXTURES, Link, Rig

TEMPLATE_FIXTURES = FIXTURES / "dcc_templates"
TEMPLATES_ESME_EUI64 = bytes.fromhex("00DB1234567890A0")
TEMPLATES_GSME_EUI64 = bytes.fromhex("00DB1234567890A1")
TEMPLATES_HUB_EUI64 = bytes.fromhex("00DB1234567890A2")
TEMPLATES_GPF_EUI64 = bytes.fromhex("00DB1234567890A3")
TEMPLATES_PPMID_EUI64 = bytes.fromhex("00DB1234567890A4")


def template_fixture_xml(name: str) -> bytes:
    return (TEMPLATE_FIXTURES / f"{name}.xml").read_bytes()


class TemplatesRig(Rig):
    """The dcc-duis-templates world on a virtual clock (a :class:`Rig` on that profile: the
    same channel tap, adapter and request log)."""

    def __init__(self) -> None:  # Rig's own profile options do not apply
        profile = Profile.from_toml_bytes(
            built_in_profile_text("dcc-duis-templates").encode(), source="dcc-duis-templates")
        self.clock = VirtualClock(profile.start_device_time_seconds)
        self.world = EmulatedWorld(profile, self.clock)
        self.link = Link(self.world)
        self.channel = InProcessChannel(self.link)
        self.adapter = S1spAdapter(self.channel, response_clock=self.now,
                                   raise_internal_errors=True)

    def address(self, eui64: bytes) -> int:
        return self.world.device_by_eui64(eui64).server_address
