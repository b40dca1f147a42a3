"""Third-party DLMS HDLC clients against `serve --addressing dlms`, over a real pty.

dlms-cosem's HdlcTransport and gurux-dlms's GXDLMSClient connect (SNRM/UA with the
negotiated parameters), exchange I-frames carrying our APDUs (neither needs an AARQ to do
that), poll (gurux's RR), and disconnect (DISC/UA), each with its default server address
form (logical device 1, no physical part: `03`, the management device) and with an
upper/lower pair naming a meter. Skipped when a library is not installed.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from emulator.clock import VirtualClock
from emulator.profile import Profile
from emulator.serve import ServeLoop
from emulator.world import EmulatedWorld
from protocol.apdu import Command, Request, Response, Status, decode_apdu, encode_request
from protocol.clock import RealMonotonicClock
from protocol.hdlc import Addressing, FrameType
from protocol.link_mux import LinkServer
from protocol.stream import FrameStreamDecoder
from protocol.transport import PtyPair

DEFAULT_TOML = (Path(__file__).resolve().parents[2] / "emulator" / "default_profile.toml"
                ).read_bytes()
#: What our UA carries with the default 128-byte limit: 81 80 12, max info length transmit
#: 128 (05 01 80) and receive 128 (06 01 80), windows 1 (07/08 04 00000001).
UA_PARAMETERS = bytes.fromhex("818012 050180 060180 070400000001 080400000001")
READ_TIMEOUT_SECONDS = 5  # pyserial read timeout: a bound on a hang, never waited out
ESME, GSME, MANAGEMENT = 16, 17, 1


@pytest.fixture
def dlms_pty() -> Iterator[tuple[str, list[LinkServer]]]:
    """The default profile served on a pty with DLMS addressing; yields the client path and
    the loop's link servers."""
    profile = Profile.from_toml_bytes(DEFAULT_TOML)
    world = EmulatedWorld(profile, VirtualClock(profile.start_device_time_seconds))
    loop = ServeLoop(world, RealMonotonicClock(), advance_interval_ms=None,
                     addressing=Addressing.DLMS)
    pair = PtyPair()
    server = loop.add_stream(pair.server, name="pty")
    thread = threading.Thread(target=loop.run, daemon=True)
    thread.start()
    try:
        yield pair.client_path, [server]
    finally:
        loop.request_stop()
        thread.join(5)
        pair.close()
    assert not thread.is_alive()


def response_of(apdu: bytes) -> Response:
    response = decode_apdu(bytes(apdu))
    assert isinstance(response, Response)
    return response


# --------------------------------------------------------------------------------------------
# dlms-cosem


def cosem_transport(path: str, physical: int | None):  # type: ignore[no-untyped-def]
    io = pytest.importorskip("dlms_cosem.io")
    return io.HdlcTransport(client_logical_address=16, server_logical_address=1,
                            server_physical_address=physical,
                            io=io.SerialIO(path, timeout=READ_TIMEOUT_SECONDS))


def test_dlms_cosem_default_address_reaches_the_management_device(dlms_pty) -> None:
    path, [server] = dlms_pty
    transport = cosem_transport(path, None)  # server address 03
    ua = transport.connect()
    assert bytes(ua.payload) == UA_PARAMETERS
    answer = transport.send_request(encode_request(Request(Command.READ_DEVICE_DIRECTORY, 3)))
    directory = response_of(answer)
    assert (directory.status, directory.invoke_id) == (Status.SUCCESS, 3)
    assert [d.server_address for d in directory.body.devices] == [2, 16, 17]
    disc = transport.disconnect()
    assert not disc.payload  # UA without information
    assert server.counters.apdus_handled == 1
    assert [s.state.name for s in server.stations()] == ["DISCONNECTED"]


def test_dlms_cosem_logical_1_physical_16_reads_the_esme(dlms_pty) -> None:
    path, [server] = dlms_pty
    transport = cosem_transport(path, ESME)  # server address 02 21
    transport.connect()
    for invoke_id in (1, 2):  # two I-frame exchanges: sequence numbers move on both sides
        balance = response_of(transport.send_request(
            encode_request(Request(Command.READ_METER_BALANCE, invoke_id))))
        assert (balance.status, balance.invoke_id) == (Status.SUCCESS, invoke_id)
    assert balance.body.meter_balance_pence == 1250  # the default profile's ESME
    transport.disconnect()
    [station] = server.stations()
    assert station.local_address == 144  # the link is kept under the address as written


# --------------------------------------------------------------------------------------------
# gurux-dlms


class GuruxLink:
    """A GXDLMSClient's frames over a pyserial port, answers read as whole frames."""

    def __init__(self, path: str, server_address: int, address_size: int = 0) -> None:
        gurux = pytest.importorskip("gurux_dlms")
        serial = pytest.importorskip("serial")
        self.gurux = gurux
        self.client = gurux.GXDLMSClient(True)  # client 16, server 1: its defaults
        if server_address != 1:
            self.client.serverAddress = server_address
            self.client.serverAddressSize = address_size
        self.port = serial.Serial(path, timeout=READ_TIMEOUT_SECONDS)
        self.decoder = FrameStreamDecoder()

    def exchange(self, frame: bytes) -> bytes:
        """Send one frame, return the answering frame's bytes."""
        self.port.write(bytes(frame))
        data = b""
        while True:
            chunk = self.port.read(1)
            assert chunk, "no answer within the read timeout"
            data += chunk
            if self.decoder.feed(chunk):
                return data

    def reply(self, answer: bytes):  # type: ignore[no-untyped-def]
        reply = self.gurux.GXReplyData()
        self.client.getData(self.gurux.GXByteBuffer(answer), reply)
        return reply

    def information_frame(self, apdu: bytes) -> bytes:
        """An I-frame gurux numbers and addresses, carrying our LLC and APDU."""
        settings = self.client.settings
        return self.gurux.GXDLMS.getHdlcFrame(
            settings, settings.getNextSend(True),
            self.gurux.GXByteBuffer(b"\xe6\xe6\x00" + apdu))

    def apdu_of(self, answer: bytes) -> tuple[int, bytes]:
        """Gurux's reading of our I-frame: its control byte, and what follows the LLC that
        gurux checked and skipped."""
        buffer = self.gurux.GXByteBuffer(answer)
        control = self.gurux.GXDLMS.getHdlcData(False, self.client.settings, buffer,
                                                self.gurux.GXReplyData(), None)
        return control, bytes(buffer.array()[buffer.position:len(answer) - 3])


def test_gurux_default_address_connects_reads_polls_and_disconnects(dlms_pty) -> None:
    path, [server] = dlms_pty
    link = GuruxLink(path, 1)
    snrm = bytes(link.client.snrmRequest())
    assert snrm[3:5] == b"\x03\x21"  # server 1 (logical 1, no physical), client 16
    ua = link.exchange(snrm)
    link.client.parseUAResponse(link.reply(ua).data)
    hdlc = link.client.hdlcSettings
    assert (hdlc.maxInfoTX, hdlc.maxInfoRX, hdlc.windowSizeTX, hdlc.windowSizeRX) == (
        128, 128, 1, 1)
    control, apdu = link.apdu_of(link.exchange(
        link.information_frame(encode_request(Request(Command.READ_CLOCK, 11)))))
    assert control == 0x30  # I-frame, N(S)=0, N(R)=1, F=1
    clock = response_of(apdu)
    assert (clock.command, clock.status, clock.invoke_id) == (
        Command.READ_CLOCK, Status.SUCCESS, 11)
    rr = link.exchange(bytes(link.client.receiverReady(link.gurux.enums.RequestTypes.FRAME)))
    [rr_frame] = FrameStreamDecoder().feed(rr)
    assert (rr_frame.frame_type, rr_frame.receive_sequence, rr_frame.poll_final) == (
        FrameType.RR, 1, True)
    disc_answer = link.exchange(bytes(link.client.disconnectRequest()))
    [ua_frame] = FrameStreamDecoder().feed(disc_answer)
    assert ua_frame.frame_type is FrameType.UA
    assert server.counters.apdus_handled == 1


def test_gurux_logical_16_physical_17_in_four_bytes_reads_the_gsme(dlms_pty) -> None:
    path, _ = dlms_pty
    gurux = pytest.importorskip("gurux_dlms")
    address = gurux.GXDLMSClient.getServerAddress(16, GSME, 4)
    link = GuruxLink(path, address, 4)
    snrm = bytes(link.client.snrmRequest())
    assert snrm[3:7] == bytes.fromhex("00200023")
    link.client.parseUAResponse(link.reply(link.exchange(snrm)).data)
    control, apdu = link.apdu_of(link.exchange(
        link.information_frame(encode_request(Request(Command.READ_METER_BALANCE, 4)))))
    balance = response_of(apdu)
    assert (control, balance.status) == (0x30, Status.SUCCESS)
    link.exchange(bytes(link.client.disconnectRequest()))


def test_gurux_sees_dm_from_an_address_with_no_device(dlms_pty) -> None:
    path, _ = dlms_pty
    gurux = pytest.importorskip("gurux_dlms")
    link = GuruxLink(path, gurux.GXDLMSClient.getServerAddress(1, 99))  # 02 C7
    reply = link.reply(link.exchange(bytes(link.client.snrmRequest())))
    assert reply.frameId == 0x1F  # DM with F=1: refused at once, not a timeout


def test_gurux_aarq_is_not_dlms_here_and_is_answered_as_a_malformed_request(
        dlms_pty) -> None:
    path, _ = dlms_pty
    link = GuruxLink(path, 1)
    link.client.parseUAResponse(link.reply(link.exchange(bytes(link.client.snrmRequest()))).data)
    [aarq] = link.client.aarqRequest()
    control, apdu = link.apdu_of(link.exchange(bytes(aarq)))
    answer = response_of(apdu)
    # the AARQ (tag 60) is no APDU type of ours: a response with MALFORMED_REQUEST, which
    # gurux's parseAareResponse cannot read; no DLMS association exists here
    assert (control, answer.status) == (0x30, Status.MALFORMED_REQUEST)
