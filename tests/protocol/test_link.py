"""The sans-I/O link station (protocol.link), both roles, driven by a virtual clock.

End-to-end tests pass every frame through encode_frame/decode_frame so the bytes are real;
time is an int the tests advance, never the wall clock.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator

import pytest
from hypothesis import given, seed, settings
from hypothesis import strategies as st

from protocol.errors import LinkError
from protocol.hdlc import CONTROL_TABLE, FrameType, HdlcFrame
from protocol.hdlc_codec import decode_frame, encode_frame
from protocol.link import (
    LLC_CLIENT_TO_SERVER,
    LLC_SERVER_TO_CLIENT,
    LLC_SIZE_BYTES,
    REACHABLE_STATES,
    TRANSITIONS,
    ApduReceived,
    Connected,
    Disconnected,
    FrameRejectReason,
    LinkEvent,
    LinkFailed,
    LinkParameters,
    LinkState,
    LinkStation,
    NextState,
    ParameterNegotiation,
    Role,
    decode_parameter_negotiation,
    describe_frame_reject,
    describe_transitions,
    encode_frame_reject,
    encode_parameter_negotiation,
)

CLIENT_ADDRESS = 0x10
SERVER_ADDRESS = 0x01
TIMEOUT_MS = 1000
UNKNOWN_CONTROL = next(b for b in range(256) if CONTROL_TABLE[b].frame_type is None)

#: SNRM proposing 128 bytes both ways and window 1, as the client sends it by default.
DEFAULT_NEGOTIATION = bytes.fromhex("818012 050180 060180 070400000001 080400000001")


def wire(frame: HdlcFrame) -> HdlcFrame:
    """The frame as the peer sees it: encoded to bytes and decoded again."""
    return decode_frame(encode_frame(frame))


def from_client(frame_type: FrameType, information: bytes = b"", *, ns: int = 0, nr: int = 0,
                poll: bool = True, segmented: bool = False) -> HdlcFrame:
    return HdlcFrame.make(frame_type, SERVER_ADDRESS, CLIENT_ADDRESS, information,
                          send_sequence=ns, receive_sequence=nr, poll_final=poll,
                          segmented=segmented)


def from_server(frame_type: FrameType, information: bytes = b"", *, ns: int = 0, nr: int = 0,
                final: bool = True, segmented: bool = False) -> HdlcFrame:
    return HdlcFrame.make(frame_type, CLIENT_ADDRESS, SERVER_ADDRESS, information,
                          send_sequence=ns, receive_sequence=nr, poll_final=final,
                          segmented=segmented)


def types(frames: list[HdlcFrame]) -> list[FrameType | None]:
    return [f.frame_type for f in frames]


def new_client(**kwargs: object) -> LinkStation:
    return LinkStation(Role.CLIENT, CLIENT_ADDRESS, SERVER_ADDRESS,
                       retransmit_timeout_ms=TIMEOUT_MS, **kwargs)  # type: ignore[arg-type]


def new_server(**kwargs: object) -> LinkStation:
    return LinkStation(Role.SERVER, SERVER_ADDRESS, CLIENT_ADDRESS, **kwargs)  # type: ignore[arg-type]


class Harness:
    """A client and a server joined by a faulty wire and a virtual clock.

    ``fate(direction, frame)`` says how many copies of each frame arrive (0 lost, 2
    duplicated); ``direction`` is "c2s" or "s2c". The server application answers every APDU
    with ``answer(apdu)`` (None: no answer) and records what it was given.
    """

    def __init__(self, *, fate: Callable[[str, HdlcFrame], int] = lambda d, f: 1,
                 answer: Callable[[bytes], bytes | None] = lambda apdu: b"re:" + apdu,
                 client: LinkStation | None = None, server: LinkStation | None = None) -> None:
        self.client = client or new_client()
        self.server = server or new_server()
        self.fate = fate
        self.answer = answer
        self.now_ms = 0
        self.server_apdus: list[bytes] = []
        self.client_events: list[LinkEvent] = []
        self.server_events: list[LinkEvent] = []
        self.log: list[tuple[str, HdlcFrame]] = []

    def _to_server(self, frame: HdlcFrame) -> None:
        for _ in range(self.fate("c2s", frame)):
            events = self.server.receive_frame(wire(frame), self.now_ms)
            self.server_events += events
            for event in events:
                if isinstance(event, ApduReceived):
                    self.server_apdus.append(event.apdu)
                    response = self.answer(event.apdu)
                    if response is not None:
                        self.server.send_apdu(response, self.now_ms)

    def _to_client(self, frame: HdlcFrame) -> None:
        for _ in range(self.fate("s2c", frame)):
            self.client_events += self.client.receive_frame(wire(frame), self.now_ms)

    def pump(self) -> None:
        """Move frames both ways until neither station has anything to send."""
        for _ in range(10_000):
            client_frames = self.client.frames_to_send()
            for frame in client_frames:
                self.log.append(("c2s", frame))
                self._to_server(frame)
            server_frames = self.server.frames_to_send()
            for frame in server_frames:
                self.log.append(("s2c", frame))
                self._to_client(frame)
            if not client_frames and not server_frames:
                return
        raise AssertionError("frames never stopped flowing")

    def run(self, max_timeouts: int = 1000) -> None:
        """Pump, then advance virtual time to each client timer, until the client is idle."""
        self.pump()
        for _ in range(max_timeouts):
            deadline = self.client.next_timeout_ms()
            if deadline is None:
                return
            self.now_ms = deadline
            self.client_events += self.client.handle_timeout(self.now_ms)
            self.pump()
        raise AssertionError("the client never went idle")

    def connect(self) -> None:
        self.client.connect(self.now_ms)
        self.run()

    def responses(self) -> list[bytes]:
        return [e.apdu for e in self.client_events if isinstance(e, ApduReceived)]

    def sent(self, direction: str) -> list[HdlcFrame]:
        return [f for d, f in self.log if d == direction]


def connected_pair(**kwargs: object) -> Harness:
    harness = Harness(**kwargs)  # type: ignore[arg-type]
    harness.connect()
    assert harness.client.state is LinkState.CONNECTED
    assert harness.server.state is LinkState.CONNECTED
    return harness


def lose(direction: str, frame_type: FrameType, *, count: int = 1, skip: int = 0,
         segmented: bool | None = None) -> Callable[[str, HdlcFrame], int]:
    """A fate losing ``count`` frames of a type in a direction, after letting ``skip`` pass."""
    seen = itertools.count()

    def fate(d: str, frame: HdlcFrame) -> int:
        if d != direction or frame.frame_type is not frame_type:
            return 1
        if segmented is not None and frame.segmented is not segmented:
            return 1
        return 0 if skip <= next(seen) < skip + count else 1
    return fate


# --------------------------------------------------------------------------------------------
# connect and negotiate
# --------------------------------------------------------------------------------------------


def test_snrm_carries_the_dlms_parameter_negotiation_with_poll_set() -> None:
    client = new_client()
    client.connect(0)
    [snrm] = client.frames_to_send()
    assert encode_frame(snrm) == bytes.fromhex(
        "7ea01e032193cd3b818012050180060180070400000001080400000001533b7e")
    assert snrm.frame_type is FrameType.SNRM and snrm.poll_final
    assert snrm.information == DEFAULT_NEGOTIATION
    assert client.state is LinkState.CONNECTING


def test_server_answers_ua_with_the_minimum_of_proposed_and_own_lengths() -> None:
    server = new_server(parameters=LinkParameters(max_information_length_bytes=200))
    proposal = ParameterNegotiation(max_transmit_length_bytes=512, max_receive_length_bytes=64,
                                    window_transmit=1, window_receive=1)
    events = server.receive_frame(wire(from_client(
        FrameType.SNRM, encode_parameter_negotiation(proposal))), 0)
    [ua] = server.frames_to_send()
    assert ua.frame_type is FrameType.UA and ua.poll_final
    # server transmits at most what the client receives (64), receives at most its own 200
    assert ua.information == bytes.fromhex("818012 050140 0601c8 070400000001 080400000001")
    assert events == [Connected(LinkParameters(64, 1))]
    assert server.negotiated == LinkParameters(64, 1)


def test_client_adopts_the_lengths_the_server_agreed_and_segments_to_them() -> None:
    harness = connected_pair(server=new_server(parameters=LinkParameters(40)))
    assert harness.client_events == [Connected(LinkParameters(40, 1))]
    harness.client.send_apdu(b"q" * 100, harness.now_ms)
    harness.run()
    requests = [f for f in harness.sent("c2s") if f.frame_type is FrameType.I]
    assert [len(f.information) for f in requests] == [40, 40, 23]
    assert harness.server_apdus == [b"q" * 100]


def test_snrm_without_information_means_128_bytes_and_window_1() -> None:
    server = new_server(parameters=LinkParameters(max_information_length_bytes=1000))
    snrm = from_client(FrameType.SNRM)
    assert encode_frame(snrm) == bytes.fromhex("7ea0070321930f017e")  # the DLMS example
    server.receive_frame(wire(snrm), 0)
    [ua] = server.frames_to_send()
    assert decode_parameter_negotiation(ua.information) == ParameterNegotiation(128, 128, 1, 1)
    assert server.peer_proposal == ParameterNegotiation()


def test_a_larger_window_proposal_is_recorded_and_answered_with_window_1() -> None:
    server = new_server()
    server.receive_frame(from_client(FrameType.SNRM, bytes.fromhex(
        "818012 050180 060180 070400000007 080400000007")), 0)
    [ua] = server.frames_to_send()
    assert ua.information.endswith(bytes.fromhex("070400000001 080400000001"))
    assert server.peer_proposal is not None
    assert server.peer_proposal.window_receive == 7
    assert server.negotiated is not None and server.negotiated.window_size == 1


def test_lengths_over_255_use_two_bytes_and_round_trip() -> None:
    values = ParameterNegotiation(1024, 300, 1, 1)
    encoded = encode_parameter_negotiation(values)
    assert encoded == bytes.fromhex("818014 05020400 0602012c 070400000001 080400000001")
    assert decode_parameter_negotiation(encoded) == values


def test_unknown_negotiation_parameters_are_skipped_and_missing_ones_default() -> None:
    assert decode_parameter_negotiation(bytes.fromhex("818007 0901ff 06020100")) == \
        ParameterNegotiation(128, 256, 1, 1)


@pytest.mark.parametrize("information", [
    bytes.fromhex("818103050180"),  # wrong group identifier
    bytes.fromhex("818004050180"),  # length says 4, 3 follow
    bytes.fromhex("81800305050180"[:12]),  # parameter length runs past the end
    bytes.fromhex("818003050100"),  # zero length
])
def test_malformed_negotiation_is_answered_with_frmr_and_no_connection(
        information: bytes) -> None:
    server = new_server()
    snrm = from_client(FrameType.SNRM, information)
    assert server.receive_frame(snrm, 0) == []
    [frmr] = server.frames_to_send()
    assert frmr.frame_type is FrameType.FRMR
    assert frmr.information == bytes((snrm.control, 0x00,
                                      FrameRejectReason.INFORMATION_NOT_PERMITTED))
    assert server.state is LinkState.DISCONNECTED


def test_server_receiving_snrm_while_connected_resets_sequence_numbers() -> None:
    harness = connected_pair()
    harness.client.send_apdu(b"one", harness.now_ms)
    harness.run()
    server = harness.server
    events = server.receive_frame(wire(from_client(FrameType.SNRM)), harness.now_ms)
    assert [type(e) for e in events] == [Connected]
    assert types(server.frames_to_send()) == [FrameType.UA]
    # a new connection numbers from 0 again: N(S)=0 is new, not a duplicate
    events = server.receive_frame(from_client(FrameType.I, LLC_CLIENT_TO_SERVER + b"two"),
                                  harness.now_ms)
    assert events == [ApduReceived(b"two")]


# --------------------------------------------------------------------------------------------
# request / response, LLC, segmentation
# --------------------------------------------------------------------------------------------


def test_request_and_response_in_single_frames_with_real_bytes() -> None:
    harness = connected_pair()
    harness.client.send_apdu(bytes.fromhex("0100070300"), harness.now_ms)
    [request] = harness.client.frames_to_send()
    assert encode_frame(request) == bytes.fromhex("7ea011032110a73fe6e600010007030056b17e")
    assert request.poll_final and request.send_sequence == 0 and request.receive_sequence == 0
    assert harness.server.receive_frame(wire(request), 0) == [ApduReceived(bytes.fromhex(
        "0100070300"))]
    harness.server.send_apdu(bytes.fromhex("8100070300"), 0)
    [response] = harness.server.frames_to_send()
    assert encode_frame(response) == bytes.fromhex("7ea011210330a5b8e6e7008100070300d6a47e")
    assert response.poll_final and response.send_sequence == 0 and response.receive_sequence == 1
    assert harness.client.receive_frame(wire(response), 0) == [ApduReceived(bytes.fromhex(
        "8100070300"))]
    assert harness.client.next_timeout_ms() is None


def test_sequence_numbers_wrap_mod_8_over_many_exchanges() -> None:
    harness = connected_pair()
    requests = [bytes((i,)) * 3 for i in range(20)]
    for request in requests:
        harness.client.send_apdu(request, harness.now_ms)
    harness.run()
    assert harness.server_apdus == requests
    assert harness.responses() == [b"re:" + r for r in requests]
    sent = [f.send_sequence for f in harness.sent("c2s") if f.frame_type is FrameType.I]
    assert sent == [i % 8 for i in range(20)]


def test_client_queues_apdus_sent_while_connecting_and_sends_them_once_connected() -> None:
    harness = Harness()
    harness.client.connect(0)
    harness.client.send_apdu(b"early", 0)
    assert types(harness.client.frames_to_send()) == [FrameType.SNRM]
    harness.client.receive_frame(wire(from_server(
        FrameType.UA, encode_parameter_negotiation(ParameterNegotiation()))), 0)
    [request] = harness.client.frames_to_send()
    assert request.information == LLC_CLIENT_TO_SERVER + b"early"


def test_segmented_request_is_acknowledged_by_rr_after_each_non_final_segment() -> None:
    harness = connected_pair()
    apdu = bytes(range(256)) * 2  # 515 bytes with the LLC: 5 segments of at most 128
    harness.client.send_apdu(apdu, harness.now_ms)
    harness.run()
    assert harness.server_apdus == [apdu]
    flow = [(d, f.frame_type, f.segmented, f.send_sequence, f.receive_sequence)
            for d, f in harness.log[2:]]  # after SNRM/UA
    assert flow == [
        ("c2s", FrameType.I, True, 0, 0), ("s2c", FrameType.RR, False, 0, 1),
        ("c2s", FrameType.I, True, 1, 0), ("s2c", FrameType.RR, False, 0, 2),
        ("c2s", FrameType.I, True, 2, 0), ("s2c", FrameType.RR, False, 0, 3),
        ("c2s", FrameType.I, True, 3, 0), ("s2c", FrameType.RR, False, 0, 4),
        ("c2s", FrameType.I, False, 4, 0), ("s2c", FrameType.I, True, 0, 5),
        ("c2s", FrameType.RR, False, 0, 1), ("s2c", FrameType.I, True, 1, 5),
        ("c2s", FrameType.RR, False, 0, 2), ("s2c", FrameType.I, True, 2, 5),
        ("c2s", FrameType.RR, False, 0, 3), ("s2c", FrameType.I, True, 3, 5),
        ("c2s", FrameType.RR, False, 0, 4), ("s2c", FrameType.I, False, 4, 5),
    ]
    assert all(f.poll_final for _, f in harness.log)
    assert harness.responses() == [b"re:" + apdu]


def test_segmented_response_to_a_short_request() -> None:
    response = b"\xaa" * 300
    harness = connected_pair(answer=lambda apdu: response)
    harness.client.send_apdu(b"read", harness.now_ms)
    harness.run()
    segments = [f for f in harness.sent("s2c") if f.frame_type is FrameType.I]
    assert [(len(f.information), f.segmented) for f in segments] == [
        (128, True), (128, True), (47, False)]
    assert segments[0].information.startswith(LLC_SERVER_TO_CLIENT)
    assert types(harness.sent("c2s"))[-2:] == [FrameType.RR, FrameType.RR]
    assert harness.responses() == [response]


def test_reassembly_over_the_bound_is_answered_with_frmr() -> None:
    harness = connected_pair(server=new_server(max_reassembly_bytes=300))
    harness.client.send_apdu(b"x" * 400, harness.now_ms)
    harness.run()
    assert harness.server_apdus == []
    assert harness.server.counters.frame_rejects_sent == 1
    [failed] = [e for e in harness.client_events if isinstance(e, LinkFailed)]
    assert "information too long" in failed.reason
    assert harness.client.state is LinkState.DISCONNECTED


def test_i_frame_longer_than_agreed_is_answered_with_frmr_reason_y() -> None:
    harness = connected_pair()
    harness.server.receive_frame(from_client(FrameType.I, b"\xe6" * 129), 0)
    [frmr] = harness.server.frames_to_send()
    assert frmr.information[2] == FrameRejectReason.INFORMATION_TOO_LONG


@pytest.mark.parametrize("size", [129, 128], ids=["over-the-agreed-length",
                                                 "past-the-reassembly-bound"])
def test_both_too_long_rejections_leave_v_r_where_it_was(size: int) -> None:
    server = new_server(max_reassembly_bytes=300)
    server.receive_frame(from_client(FrameType.SNRM), 0)
    server.frames_to_send()
    for ns in (0, 1):  # two accepted segments of 128: V(R)=2, 256 bytes reassembled
        first = LLC_CLIENT_TO_SERVER if ns == 0 else b""
        server.receive_frame(from_client(FrameType.I, first + b"x" * (128 - len(first)),
                                         ns=ns, segmented=True), 0)
        assert types(server.frames_to_send()) == [FrameType.RR]
    # rejected control 14 (I, N(S)=2, P=1); V(R)=2 (not advanced), V(S)=0 -> 40; reason Y
    server.receive_frame(from_client(FrameType.I, b"x" * size, ns=2, segmented=True), 0)
    assert [f.information for f in server.frames_to_send()] == [bytes.fromhex("144004")]
    # the APDU so far was dropped: the same N(S) now starts a new one, accepted
    events = server.receive_frame(from_client(FrameType.I, LLC_CLIENT_TO_SERVER + b"n",
                                              ns=2), 0)
    assert events == [ApduReceived(b"n")]


def test_i_frame_without_poll_is_accepted_and_answered_on_the_next_rr_poll() -> None:
    server = new_server()
    server.receive_frame(from_client(FrameType.SNRM), 0)
    server.frames_to_send()
    events = server.receive_frame(from_client(FrameType.I, LLC_CLIENT_TO_SERVER + b"q",
                                              poll=False), 0)
    assert events == [ApduReceived(b"q")]
    server.send_apdu(b"answer", 0)
    assert server.frames_to_send() == []  # P=0: the server may not send yet
    server.receive_frame(from_client(FrameType.RR, nr=0), 0)
    [answer] = server.frames_to_send()
    assert (answer.frame_type, answer.send_sequence, answer.receive_sequence,
            answer.poll_final) == (FrameType.I, 0, 1, True)
    assert answer.information == LLC_SERVER_TO_CLIENT + b"answer"


def test_a_proposal_above_the_servers_limit_is_reduced_and_the_ua_says_so() -> None:
    server = new_server()
    # proposes 2032 (07 F0) and 65535 (FF FF) bytes, windows 1
    server.receive_frame(from_client(FrameType.SNRM, bytes.fromhex(
        "818008 050207f0 0602ffff")), 0)
    [ua] = server.frames_to_send()
    assert ua.information == bytes.fromhex("818012 050180 060180 070400000001 080400000001")
    assert server.negotiated == LinkParameters(128, 1)


def test_a_proposal_of_zero_bytes_is_unreadable_and_rejected() -> None:
    server = new_server()
    server.receive_frame(from_client(FrameType.SNRM, bytes.fromhex("818003 050100")), 0)
    [frmr] = server.frames_to_send()
    assert frmr.frame_type is FrameType.FRMR
    assert frmr.information[2] == FrameRejectReason.INFORMATION_NOT_PERMITTED
    assert server.state is LinkState.DISCONNECTED


def test_wrong_llc_is_rejected_with_frmr_x_and_consumes_no_sequence_number() -> None:
    harness = connected_pair()
    harness.server.receive_frame(from_client(FrameType.I, LLC_SERVER_TO_CLIENT + b"x"), 0)
    [frmr] = harness.server.frames_to_send()
    # rejected control byte 10 (I, N(S)=0, P=1); V(R)=0 (not advanced), V(S)=0; reason X
    assert frmr.frame_type is FrameType.FRMR and frmr.poll_final
    assert frmr.information == bytes.fromhex("100002")
    assert harness.server.counters.apdus_rejected_for_llc == 1
    assert "LLC header e6e700" in harness.server.counters.last_diagnostic
    assert harness.server.state is LinkState.CONNECTED
    # the same N(S) with the right LLC is then accepted as the first I-frame
    harness.server.receive_frame(from_client(FrameType.I, LLC_CLIENT_TO_SERVER + b"x"), 0)
    assert types(harness.server.frames_to_send()) == [FrameType.RR]


def test_wrong_llc_in_the_first_segment_is_rejected_before_the_rest_arrives() -> None:
    harness = connected_pair()
    harness.server.receive_frame(from_client(FrameType.I, b"\xe6\xe6\x01" + b"a" * 20,
                                             segmented=True), 0)
    [frmr] = harness.server.frames_to_send()
    assert frmr.information == bytes.fromhex("100002")


def test_llc_split_across_one_byte_segments_is_accepted() -> None:
    server = new_server()
    # proposes 1 byte each way: the smallest maximum information length there is
    server.receive_frame(from_client(FrameType.SNRM, bytes.fromhex("818006 050101 060101")), 0)
    [ua] = server.frames_to_send()
    assert ua.information == bytes.fromhex("818012 050101 060101 070400000001 080400000001")
    assert server.negotiated == LinkParameters(1, 1)
    received: list[LinkEvent] = []
    for index, byte in enumerate(LLC_CLIENT_TO_SERVER + b"q"):
        last = index == LLC_SIZE_BYTES
        received += server.receive_frame(from_client(
            FrameType.I, bytes((byte,)), ns=index, segmented=not last), 0)
        [answer] = server.frames_to_send() if not last else [None]
        assert last or answer.frame_type is FrameType.RR
    assert received == [ApduReceived(b"q")]


def test_a_short_final_apdu_without_a_whole_llc_is_rejected() -> None:
    harness = connected_pair()
    harness.server.receive_frame(from_client(FrameType.I, b"\xe6\xe6"), 0)
    [frmr] = harness.server.frames_to_send()
    assert frmr.information[2] == FrameRejectReason.INFORMATION_NOT_PERMITTED


def test_client_drops_a_response_with_the_wrong_llc_without_failing_the_link() -> None:
    harness = connected_pair()
    harness.client.send_apdu(b"q", 0)
    harness.client.frames_to_send()
    events = harness.client.receive_frame(
        from_server(FrameType.I, LLC_CLIENT_TO_SERVER + b"r", ns=0, nr=1), 0)
    assert events == []
    assert harness.client.counters.apdus_rejected_for_llc == 1
    assert harness.client.state is LinkState.CONNECTED
    assert harness.client.next_timeout_ms() is None


def test_server_with_no_answer_acknowledges_the_request_with_rr() -> None:
    harness = connected_pair(answer=lambda apdu: None)
    harness.client.send_apdu(b"fire and forget", harness.now_ms)
    harness.client.send_apdu(b"second", harness.now_ms)
    harness.run()
    assert harness.server_apdus == [b"fire and forget", b"second"]
    assert types(harness.sent("s2c"))[-2:] == [FrameType.RR, FrameType.RR]
    assert harness.responses() == []


def test_rr_poll_with_nothing_pending_is_answered_with_rr_final() -> None:
    harness = connected_pair()
    harness.server.receive_frame(from_client(FrameType.RR, nr=0), 0)
    [rr] = harness.server.frames_to_send()
    assert (rr.frame_type, rr.poll_final, rr.receive_sequence) == (FrameType.RR, True, 0)


def test_response_queued_after_the_poll_goes_out_on_the_next_rr_poll() -> None:
    harness = connected_pair(answer=lambda apdu: None)
    server = harness.server
    server.receive_frame(from_client(FrameType.I, LLC_CLIENT_TO_SERVER + b"q"), 0)
    assert types(server.frames_to_send()) == [FrameType.RR]
    server.send_apdu(b"late", 0)
    assert server.frames_to_send() == []  # a secondary speaks only when polled
    server.receive_frame(from_client(FrameType.RR, nr=0), 0)
    [late] = server.frames_to_send()
    assert late.information == LLC_SERVER_TO_CLIENT + b"late"


def test_rnr_holds_the_servers_i_frames_until_rr() -> None:
    server = connected_pair().server
    server.receive_frame(from_client(FrameType.I, LLC_CLIENT_TO_SERVER + b"q"), 0)
    server.send_apdu(b"r" * 300, 0)
    [first] = server.frames_to_send()
    assert first.segmented
    server.receive_frame(from_client(FrameType.RNR, nr=1), 0)
    assert types(server.frames_to_send()) == [FrameType.RR]
    server.receive_frame(from_client(FrameType.RR, nr=1), 0)
    [second] = server.frames_to_send()
    assert second.frame_type is FrameType.I and second.send_sequence == 1


def test_client_receiving_rnr_polls_again_after_the_timeout_then_continues() -> None:
    harness = connected_pair()
    client = harness.client
    client.send_apdu(b"q" * 200, 0)
    assert client.frames_to_send()[0].segmented
    client.receive_frame(from_server(FrameType.RNR, nr=1), 0)
    assert client.frames_to_send() == []
    assert client.next_timeout_ms() == TIMEOUT_MS
    client.handle_timeout(TIMEOUT_MS)
    [poll] = client.frames_to_send()
    assert (poll.frame_type, poll.poll_final) == (FrameType.RR, True)
    client.receive_frame(from_server(FrameType.RR, nr=1), TIMEOUT_MS)
    [second] = client.frames_to_send()
    assert second.frame_type is FrameType.I and second.send_sequence == 1


# --------------------------------------------------------------------------------------------
# disconnect, DM, FRMR, UI
# --------------------------------------------------------------------------------------------


def test_disc_is_answered_with_ua_and_both_ends_disconnect() -> None:
    harness = connected_pair()
    harness.client.disconnect(harness.now_ms)
    harness.run()
    assert harness.client.state is LinkState.DISCONNECTED
    assert harness.server.state is LinkState.DISCONNECTED
    assert harness.client_events[-1] == Disconnected("disconnected at our request")
    assert [type(e) for e in harness.server_events] == [Connected, Disconnected]
    assert harness.client.negotiated is None


@pytest.mark.parametrize("frame_type", [FrameType.DISC, FrameType.I, FrameType.RR,
                                        FrameType.RNR])
def test_disconnected_server_answers_dm(frame_type: FrameType) -> None:
    server = new_server()
    assert server.receive_frame(wire(from_client(frame_type)), 0) == []
    [dm] = server.frames_to_send()
    assert encode_frame(dm) == bytes.fromhex("7ea00721031f6be97e")
    assert dm.frame_type is FrameType.DM and dm.poll_final


def test_client_receiving_dm_is_disconnected_and_frmr_is_link_failed() -> None:
    harness = connected_pair()
    events = harness.client.receive_frame(from_server(FrameType.DM), 0)
    assert [type(e) for e in events] == [Disconnected]
    assert harness.client.state is LinkState.DISCONNECTED
    harness = connected_pair()
    events = harness.client.receive_frame(
        from_server(FrameType.FRMR, bytes.fromhex("110008")), 0)
    assert events == [LinkFailed(
        "server 1 rejected a frame (FRMR): control byte 11 rejected (invalid receive "
        "sequence); peer V(S)=0, V(R)=0; connect again")]
    assert harness.client.state is LinkState.DISCONNECTED


def test_out_of_range_nr_is_answered_with_frmr_carrying_the_standard_three_bytes() -> None:
    harness = connected_pair()
    harness.client.send_apdu(b"q", 0)
    harness.run()  # server V(S)=1, V(R)=1
    rejected = from_client(FrameType.RR, nr=5)
    harness.server.receive_frame(wire(rejected), 0)
    [frmr] = harness.server.frames_to_send()
    assert frmr.frame_type is FrameType.FRMR and frmr.poll_final
    assert frmr.information == bytes((rejected.control, (1 << 5) | (1 << 1), 0x08))
    assert frmr.information == encode_frame_reject(rejected.control, 1, 1,
                                                   FrameRejectReason.INVALID_RECEIVE_SEQUENCE)


def test_new_i_frame_whose_nr_does_not_acknowledge_our_last_frame_gets_frmr_reason_z() -> None:
    harness = connected_pair()
    harness.server.receive_frame(
        from_client(FrameType.I, LLC_CLIENT_TO_SERVER + b"q", ns=0, nr=3), 0)
    [frmr] = harness.server.frames_to_send()
    assert frmr.information[2] == FrameRejectReason.INVALID_RECEIVE_SEQUENCE
    assert harness.server.counters.frame_rejects_sent == 1


def test_i_frames_without_poll_are_taken_but_not_answered_until_a_poll() -> None:
    server = connected_pair().server
    events = server.receive_frame(from_client(
        FrameType.I, LLC_CLIENT_TO_SERVER + b"ab", poll=False, segmented=True), 0)
    assert events == [] and server.frames_to_send() == []
    events = server.receive_frame(from_client(FrameType.I, b"cd", ns=1, poll=False), 0)
    assert events == [ApduReceived(b"abcd")]
    assert server.frames_to_send() == []
    server.receive_frame(from_client(FrameType.RR, nr=0), 0)
    [rr] = server.frames_to_send()
    assert rr.frame_type is FrameType.RR and rr.receive_sequence == 2


def test_frmr_information_of_the_wrong_size_is_still_described() -> None:
    assert describe_frame_reject(b"") == "FRMR with 0-byte information "


def test_unknown_control_byte_is_answered_with_frmr_reason_w() -> None:
    harness = connected_pair()
    frame = HdlcFrame(SERVER_ADDRESS, CLIENT_ADDRESS, UNKNOWN_CONTROL)
    harness.server.receive_frame(wire(frame), 0)
    [frmr] = harness.server.frames_to_send()
    assert frmr.information == bytes((UNKNOWN_CONTROL, 0, FrameRejectReason.INVALID_CONTROL))
    assert "invalid control" in describe_frame_reject(frmr.information)


def test_ui_frames_are_ignored_by_both_roles() -> None:
    harness = connected_pair()
    assert harness.server.receive_frame(from_client(FrameType.UI, b"hello"), 0) == []
    assert harness.client.receive_frame(from_server(FrameType.UI, b"hello"), 0) == []
    assert harness.server.frames_to_send() == [] and harness.client.frames_to_send() == []


def test_frames_for_another_link_are_ignored_and_counted() -> None:
    server = new_server()
    stray = HdlcFrame.make(FrameType.SNRM, SERVER_ADDRESS, 0x22)
    assert server.receive_frame(stray, 0) == []
    assert server.frames_to_send() == []
    assert server.counters.misaddressed_frames_ignored == 1


# --------------------------------------------------------------------------------------------
# the transition table
# --------------------------------------------------------------------------------------------


def _canonical_frame(role: Role, state: LinkState, frame_type: FrameType | None) -> HdlcFrame:
    """The plain frame of a type a station in that state would get from its peer."""
    if role is Role.SERVER:
        if frame_type is None:
            return HdlcFrame(SERVER_ADDRESS, CLIENT_ADDRESS, UNKNOWN_CONTROL)
        information = LLC_CLIENT_TO_SERVER + b"req" if frame_type is FrameType.I else b""
        return from_client(frame_type, information)
    if frame_type is None:
        return HdlcFrame(CLIENT_ADDRESS, SERVER_ADDRESS, UNKNOWN_CONTROL)
    information = {FrameType.I: LLC_SERVER_TO_CLIENT + b"resp",
                   FrameType.FRMR: bytes.fromhex("000000")}.get(frame_type, b"")
    # a connected client has sent I-frame N(S)=0; the answer acknowledges it
    return from_server(frame_type, information, ns=0, nr=1)


def _station_in(role: Role, state: LinkState) -> LinkStation:
    if role is Role.SERVER:
        server = new_server()
        if state is LinkState.CONNECTED:
            server.receive_frame(from_client(FrameType.SNRM), 0)
            server.frames_to_send()
        return server
    client = new_client()
    if state is LinkState.DISCONNECTED:
        return client
    client.connect(0)
    if state is not LinkState.CONNECTING:
        client.receive_frame(from_server(FrameType.UA), 0)
        if state is LinkState.CONNECTED:
            client.send_apdu(b"req", 0)
        else:
            client.disconnect(0)
    client.frames_to_send()
    assert client.state is state
    return client


TABLE_ROWS = [key for key in TRANSITIONS if key[1] in REACHABLE_STATES[key[0]]]


@pytest.mark.parametrize("role,state,frame_type", TABLE_ROWS,
                         ids=[f"{r.name}-{s.name}-{f.name if f else 'unknown'}"
                              for r, s, f in TABLE_ROWS])
def test_every_transition_table_row_behaves_as_listed(
        role: Role, state: LinkState, frame_type: FrameType | None) -> None:
    row = TRANSITIONS[(role, state, frame_type)]
    station = _station_in(role, state)
    station.receive_frame(wire(_canonical_frame(role, state, frame_type)), 0)
    answers = station.frames_to_send()
    assert station.state is row.next_state
    assert types(answers) == ([row.answer] if row.answer is not None else [])
    assert all(f.poll_final for f in answers)


def test_transition_table_covers_every_reachable_state_and_frame_type() -> None:
    for role, states in REACHABLE_STATES.items():
        for state in states:
            for frame_type in (*FrameType, None):
                assert (role, state, frame_type) in TRANSITIONS


def test_transition_table_renders_for_the_docs() -> None:
    table = describe_transitions(Role.SERVER)
    assert "| CONNECTED | DISC | UA | DISCONNECTED |" in table
    assert len(table.splitlines()) == 2 + 2 * (len(FrameType) + 1)


# --------------------------------------------------------------------------------------------
# loss, duplication, retransmission, on the virtual clock
# --------------------------------------------------------------------------------------------


def test_lost_request_is_resent_unchanged_after_the_timeout_and_applied_once() -> None:
    harness = connected_pair(fate=lose("c2s", FrameType.I))
    harness.client.send_apdu(b"add 500 pence", harness.now_ms)
    harness.pump()
    assert harness.server_apdus == []
    assert harness.client.next_timeout_ms() == harness.now_ms + TIMEOUT_MS
    harness.run()
    first, resent = [f for f in harness.sent("c2s") if f.frame_type is FrameType.I]
    assert encode_frame(first) == encode_frame(resent)
    assert harness.server_apdus == [b"add 500 pence"]
    assert harness.responses() == [b"re:add 500 pence"]
    assert harness.now_ms == TIMEOUT_MS


def test_lost_response_makes_the_server_resend_its_answer_without_reapplying() -> None:
    harness = connected_pair(fate=lose("s2c", FrameType.I, count=2))
    harness.client.send_apdu(b"add 500 pence", harness.now_ms)
    harness.run()
    assert harness.server_apdus == [b"add 500 pence"]
    assert harness.responses() == [b"re:add 500 pence"]
    answers = [encode_frame(f) for f in harness.sent("s2c") if f.frame_type is FrameType.I]
    assert len(answers) == 3 and len(set(answers)) == 1
    assert harness.server.counters.duplicates_answered == 2
    assert harness.client.counters.retransmissions == 2


def test_lost_rr_while_the_client_sends_segments_is_recovered() -> None:
    harness = connected_pair(fate=lose("s2c", FrameType.RR, skip=1))
    harness.client.send_apdu(b"s" * 400, harness.now_ms)
    harness.run()
    assert harness.server_apdus == [b"s" * 400]
    assert harness.server.counters.duplicates_answered == 1
    assert harness.responses() == [b"re:" + b"s" * 400]


def test_lost_rr_while_the_server_sends_segments_is_recovered() -> None:
    harness = connected_pair(fate=lose("c2s", FrameType.RR, skip=1),
                             answer=lambda apdu: b"r" * 500)
    harness.client.send_apdu(b"read profile", harness.now_ms)
    harness.run()
    assert harness.server_apdus == [b"read profile"]
    assert harness.responses() == [b"r" * 500]
    assert harness.client.counters.retransmissions == 1


def test_lost_response_segment_is_sent_again_for_the_repeated_rr() -> None:
    harness = connected_pair(fate=lose("s2c", FrameType.I, skip=1),
                             answer=lambda apdu: b"r" * 500)
    harness.client.send_apdu(b"read profile", harness.now_ms)
    harness.run()
    assert harness.responses() == [b"r" * 500]
    assert harness.server.counters.duplicates_answered == 1


def test_every_frame_duplicated_still_applies_each_request_once() -> None:
    harness = connected_pair(fate=lambda d, f: 2, answer=lambda apdu: apdu * 60)
    requests = [bytes((i,)) * (30 * i + 1) for i in range(10)]
    for request in requests:
        harness.client.send_apdu(request, harness.now_ms)
    harness.run()
    assert harness.server_apdus == requests
    assert harness.responses() == [r * 60 for r in requests]
    assert harness.client.state is LinkState.CONNECTED


def test_stale_request_delivered_after_the_next_exchange_is_not_applied_again() -> None:
    harness = connected_pair()
    harness.client.send_apdu(b"credit 1000 pence", harness.now_ms)
    harness.run()
    stale = harness.sent("c2s")[-1]
    harness.client.send_apdu(b"read balance", harness.now_ms)
    harness.run()
    assert harness.server.receive_frame(wire(stale), harness.now_ms) == []
    assert harness.server_apdus == [b"credit 1000 pence", b"read balance"]
    # whatever the server says back to the stale copy, the client does not take it as new
    for frame in harness.server.frames_to_send():
        assert harness.client.receive_frame(wire(frame), harness.now_ms) == []
    harness.client.send_apdu(b"read again", harness.now_ms)
    harness.run()
    assert harness.responses() == [b"re:credit 1000 pence", b"re:read balance",
                                   b"re:read again"]


def test_stale_response_arriving_during_the_next_request_is_ignored() -> None:
    harness = connected_pair()
    harness.client.send_apdu(b"first", harness.now_ms)
    harness.run()
    stale = harness.sent("s2c")[-1]
    harness.client.send_apdu(b"second", harness.now_ms)
    [request] = harness.client.frames_to_send()
    assert harness.client.receive_frame(wire(stale), harness.now_ms) == []
    assert harness.client.counters.stale_frames_ignored == 1
    harness.log.append(("c2s", request))
    harness._to_server(request)
    harness.run()
    assert harness.responses() == [b"re:first", b"re:second"]


def test_rr_poll_repeating_an_acknowledgement_is_answered_with_rr() -> None:
    harness = connected_pair(answer=lambda apdu: b"r" * 200 if apdu == b"q" else None)
    harness.client.send_apdu(b"q", harness.now_ms)
    harness.run()
    stale_rr = [f for f in harness.sent("c2s") if f.frame_type is FrameType.RR][-1]
    harness.client.send_apdu(b"q2", harness.now_ms)  # acknowledges our last segment
    harness.run()
    # the server sent 2 segments (N(S) 0 and 1) and took 2 APDUs: V(S)=2, V(R)=2; the RR's
    # N(R)=1 is V(S)-1, but nothing is unacknowledged: counted stale, the poll answered
    assert stale_rr.receive_sequence == 1
    assert harness.server.receive_frame(wire(stale_rr), harness.now_ms) == []
    [answer] = harness.server.frames_to_send()
    assert (answer.frame_type, answer.poll_final, answer.receive_sequence) == (
        FrameType.RR, True, 2)
    assert harness.server.counters.stale_frames_ignored == 1
    assert harness.server.state is LinkState.CONNECTED
    assert harness.server_apdus == [b"q", b"q2"]


def test_rr_without_poll_repeating_an_acknowledgement_gets_no_answer() -> None:
    harness = connected_pair(answer=lambda apdu: b"r")
    harness.client.send_apdu(b"q", harness.now_ms)
    harness.run()  # server V(S)=1, its I-frame acknowledged by nothing yet
    harness.server.receive_frame(from_client(FrameType.RR, nr=1), harness.now_ms)
    assert types(harness.server.frames_to_send()) == [FrameType.RR]  # acknowledged
    harness.server.receive_frame(from_client(FrameType.RR, nr=0, poll=False), harness.now_ms)
    assert harness.server.frames_to_send() == []


def test_retries_exhausted_gives_link_failed_and_disconnected() -> None:
    harness = connected_pair(fate=lose("s2c", FrameType.I, count=100))
    start_ms = harness.now_ms
    harness.client.send_apdu(b"q", start_ms)
    harness.run()
    failures = [e for e in harness.client_events if isinstance(e, LinkFailed)]
    assert len(failures) == 1 and "after 3 retransmissions" in failures[0].reason
    assert harness.client.state is LinkState.DISCONNECTED
    assert harness.client.counters.retransmissions == 3
    assert harness.now_ms == start_ms + 4 * TIMEOUT_MS
    assert harness.server_apdus == [b"q"]  # applied once, whatever the client concluded
    assert harness.client.next_timeout_ms() is None
    with pytest.raises(LinkError, match="connect first"):
        harness.client.send_apdu(b"q", harness.now_ms)


def test_timer_does_nothing_before_its_deadline() -> None:
    client = new_client()
    client.connect(0)
    client.frames_to_send()
    assert client.handle_timeout(TIMEOUT_MS - 1) == []
    assert client.frames_to_send() == []
    client.handle_timeout(TIMEOUT_MS)
    assert types(client.frames_to_send()) == [FrameType.SNRM]


def test_lost_snrm_and_lost_ua_are_recovered_by_resending_snrm() -> None:
    harness = Harness(fate=lose("c2s", FrameType.SNRM))
    harness.connect()
    assert harness.client.state is LinkState.CONNECTED
    harness = Harness(fate=lose("s2c", FrameType.UA))
    harness.connect()
    assert harness.client.state is LinkState.CONNECTED
    assert [type(e) for e in harness.client_events] == [Connected]
    assert [type(e) for e in harness.server_events] == [Connected, Connected]


def test_unanswered_snrm_fails_the_link() -> None:
    harness = Harness(fate=lambda d, f: 0)
    harness.connect()
    assert harness.client_events == [LinkFailed(
        "no answer from server 1 to SNRM after 3 retransmissions, 1000 ms apart; "
        "check the device is served and the line is sound")]


def test_lost_ua_to_disc_ends_with_dm_and_disconnected() -> None:
    harness = connected_pair(fate=lose("s2c", FrameType.UA, skip=1))
    harness.client.disconnect(harness.now_ms)
    harness.run()
    assert types(harness.sent("s2c"))[-1] is FrameType.DM
    assert harness.client.state is LinkState.DISCONNECTED
    assert isinstance(harness.client_events[-1], Disconnected)


def _fates_from(pattern: list[int]) -> Callable[[str, HdlcFrame], int]:
    cycle: Iterator[int] = itertools.cycle(pattern)
    return lambda d, f: next(cycle)


@seed(20261129)
@settings(max_examples=80, deadline=None)
@given(pattern=st.lists(st.sampled_from([0, 1, 1, 1, 1, 2]), min_size=1, max_size=40),
       request_sizes=st.lists(st.integers(0, 400), min_size=1, max_size=6),
       response_factor=st.integers(0, 3))
def test_over_a_lossy_duplicating_link_each_request_is_applied_once_in_order(
        pattern: list[int], request_sizes: list[int], response_factor: int) -> None:
    requests = [i.to_bytes(2, "big") + b"m" * size for i, size in enumerate(request_sizes)]
    harness = Harness(fate=_fates_from(pattern),
                      answer=lambda apdu: b"ok" + apdu * response_factor)
    harness.client.connect(0)
    for request in requests:
        harness.client.send_apdu(request, 0)
    harness.run()
    applied = harness.server_apdus
    assert applied == requests[:len(applied)]  # exactly once, in order
    responses = harness.responses()
    assert responses == [b"ok" + r * response_factor for r in requests[:len(responses)]]
    failed = [e for e in harness.client_events if isinstance(e, LinkFailed)]
    if failed:  # failed cleanly
        assert len(failed) == 1
        assert harness.client.state is LinkState.DISCONNECTED
        assert len(responses) <= len(applied) <= len(responses) + 1
    else:  # delivered
        assert applied == requests and len(responses) == len(requests)
        assert harness.client.state is LinkState.CONNECTED


# --------------------------------------------------------------------------------------------
# API misuse gives typed errors
# --------------------------------------------------------------------------------------------


def test_api_misuse_raises_link_error_saying_what_to_do() -> None:
    with pytest.raises(LinkError, match="connect first"):
        new_client().send_apdu(b"q", 0)
    with pytest.raises(LinkError, match="does not connect"):
        new_server().connect(0)
    with pytest.raises(LinkError, match="only window size 1"):
        new_client(parameters=LinkParameters(window_size=2))
    with pytest.raises(LinkError, match="max_information_length_bytes"):
        LinkParameters(max_information_length_bytes=0)
    client = new_client()
    client.connect(0)
    with pytest.raises(LinkError, match="disconnect first"):
        client.connect(0)


def test_server_has_no_timer_and_an_idle_client_has_none() -> None:
    harness = connected_pair()
    assert harness.server.next_timeout_ms() is None
    assert harness.client.next_timeout_ms() is None


def test_a_handler_may_only_choose_a_next_state_its_table_row_allows(
        monkeypatch: pytest.MonkeyPatch) -> None:
    def rogue(station: LinkStation, frame: HdlcFrame, now_ms: int) -> NextState:
        return NextState(LinkState.DISCONNECTING, [])

    key = (Role.SERVER, LinkState.DISCONNECTED, FrameType.SNRM)
    monkeypatch.setitem(TRANSITIONS, key, TRANSITIONS[key]._replace(handler=rogue))
    station = LinkStation(Role.SERVER, 16, 0x10)
    with pytest.raises(LinkError, match="rogue chose DISCONNECTING"):
        station.receive_frame(HdlcFrame.make(FrameType.SNRM, 16, 0x10), 0)
    assert station.state is LinkState.DISCONNECTED


def test_unreadable_snrm_parameters_take_the_rows_listed_alternative_state() -> None:
    row = TRANSITIONS[(Role.SERVER, LinkState.DISCONNECTED, FrameType.SNRM)]
    assert row.alternatives == frozenset({LinkState.DISCONNECTED})
    station = LinkStation(Role.SERVER, 16, 0x10)
    station.receive_frame(HdlcFrame.make(FrameType.SNRM, 16, 0x10, bytes.fromhex("818000ff")), 0)
    assert types(station.frames_to_send()) == [FrameType.FRMR]
    assert station.state is LinkState.DISCONNECTED
