"""The sans-I/O HDLC link station, for both roles: the client (adapter) and the server (device).

A :class:`LinkStation` turns frames in (:meth:`LinkStation.receive_frame`), application
requests (:meth:`~LinkStation.connect`, :meth:`~LinkStation.send_apdu`,
:meth:`~LinkStation.disconnect`) and timer expiries (:meth:`~LinkStation.handle_timeout`) into
frames out (:meth:`~LinkStation.frames_to_send`) and :data:`LinkEvent` values for the
application. Time comes in as integer ``now_ms`` arguments; :meth:`~LinkStation.next_timeout_ms`
says when the caller must call ``handle_timeout``. This module must never read a clock, do I/O,
or deliver one received APDU to the application twice.

Every (role, state, frame type) the station can meet is a row of :data:`TRANSITIONS`, the one
place that says which handler runs, the state the station enters after it and the usual
answer. Handlers never set the state: one that must depart from its row's next state returns a
:class:`NextState` naming one of the row's ``alternatives``, checked. Entering DISCONNECTED
forgets the link; a client entering CONNECTED starts its queued APDUs. Client-only state (the
outstanding poll) and server-only state (the answers) live in their own small objects.
:func:`describe_transitions` renders the table for the docs.

The wire behaviour, and the choices this module makes where the list left one open:

- Connect: SNRM (P=1) carries the DLMS parameter negotiation (``81 80 LL`` then ``05``/``06``
  max information length transmit/receive, ``07``/``08`` window transmit/receive); UA (F=1)
  answers with each value the minimum of the proposal and the server's own. An SNRM without
  information means 128 bytes and window 1. Both roles always negotiate, and keep, window 1;
  a larger proposal is recorded in :attr:`LinkStation.peer_proposal` and answered with 1. An
  unreadable negotiation field is answered with FRMR (reason X) and the state is unchanged.
  :attr:`LinkStation.negotiated` reports the smaller of the two agreed lengths.
- LLC: ``E6 E6 00`` opens each client->server APDU, ``E6 E7 00`` each server->client APDU. A
  server rejects the I-frame whose bytes show the LLC is wrong (the first segment, or the
  segment that completes the three LLC bytes) with FRMR (reason X), like any information
  field it cannot use: V(R) does not advance, the APDU is dropped, so a client is never left
  polling for a response that cannot come. A client drops a response whose LLC is wrong (no
  event). Both count it in :attr:`LinkCounters.apdus_rejected_for_llc`.
- Too long: an I-frame over the agreed receive length, or one that would take the reassembled
  APDU past ``max_reassembly_bytes``, is rejected with FRMR (reason Y) before it is accepted:
  V(R) does not advance and the part of the APDU reassembled so far is dropped.
- Polls: the client sends every frame with P=1 and has at most one poll outstanding; it is
  answered by exactly one frame with F=1. The server answers I, RR and RNR frames only when P=1;
  SNRM, DISC, rejects (FRMR) and frames to a disconnected server (DM) are always answered, F=1.
  The server builds the answer to a complete APDU when :meth:`LinkStation.frames_to_send` is
  called, so an application that calls ``send_apdu`` while handling :class:`ApduReceived` has
  its response in that same answer. An APDU queued later goes out on the client's next RR poll.
- Duplicates: a server receiving an I-frame whose N(S) is V(R)-1 (the client retransmitted
  after our answer was lost) does not deliver it again and resends its last answer unchanged.
  An RR whose N(R) is V(S)-1 asks for our unacknowledged I-frame again; with nothing
  unacknowledged (the client repeats an acknowledgement it already gave) it is counted as
  stale and, with P=1, answered as any poll is: every RR/RNR poll on a connected link gets
  exactly one frame back. Any other N(R) is out of range: FRMR
  (reason Z). An I-frame with any other N(S) is out of sequence (stale) and is ignored. All
  ignored frames are counted in :attr:`LinkCounters.stale_frames_ignored`. Sequence numbers
  are mod 8, so a stale copy more than seven frames old cannot be told from a new one.
- The client never sends FRMR: a frame it cannot use in its state (stale, unsolicited, out of
  sequence) is ignored and counted; its retransmission timer ends a dead link with
  :class:`LinkFailed`. DM gives :class:`Disconnected`, FRMR gives :class:`LinkFailed`.
- A server that has sent FRMR keeps its state; the client, now DISCONNECTED, reconnects with
  SNRM, which resets the server. A server receiving SNRM while connected resets and reports
  :class:`Connected` again (a retransmitted SNRM does the same).
- UI frames are ignored by both roles.
"""

from __future__ import annotations

import enum
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import NamedTuple

from protocol.errors import LinkError
from protocol.hdlc import CONTROL_TABLE, MAX_FRAME_LENGTH, FrameType, HdlcFrame, control_byte

#: I-frame and RR sequence numbers are modulo this.
SEQUENCE_MODULUS = 8
#: DLMS default maximum information field length, both directions.
DEFAULT_MAX_INFORMATION_LENGTH_BYTES = 128
#: Largest information field a frame can carry: the 11-bit frame length less the format field,
#: two 4-byte addresses, the control byte, HCS and FCS.
MAX_INFORMATION_LENGTH_BYTES = MAX_FRAME_LENGTH - (2 + 4 + 4 + 1 + 2 + 2)
#: Largest window the mod-8 numbering allows (we always use 1).
MAX_WINDOW_SIZE = SEQUENCE_MODULUS - 1
#: Default bound on one reassembled APDU (LLC included); beyond it the server answers FRMR.
DEFAULT_MAX_REASSEMBLY_BYTES = 64 * 1024

#: LLC header opening every client->server APDU.
LLC_CLIENT_TO_SERVER = bytes.fromhex("E6E600")
#: LLC header opening every server->client APDU.
LLC_SERVER_TO_CLIENT = bytes.fromhex("E6E700")
LLC_SIZE_BYTES = 3

#: Format identifier and group identifier opening the SNRM/UA negotiation field.
NEGOTIATION_FORMAT_ID = 0x81
NEGOTIATION_GROUP_ID = 0x80


class NegotiationParameter(enum.IntEnum):
    """Parameter identifiers of the HDLC negotiation field."""

    MAX_INFORMATION_LENGTH_TRANSMIT = 0x05
    MAX_INFORMATION_LENGTH_RECEIVE = 0x06
    WINDOW_SIZE_TRANSMIT = 0x07
    WINDOW_SIZE_RECEIVE = 0x08


_KNOWN_PARAMETER_IDS = frozenset(int(p) for p in NegotiationParameter)


class FrameRejectReason(enum.IntFlag):
    """Reason bits of the third FRMR information byte (ISO/IEC 13239 W, X, Y, Z)."""

    INVALID_CONTROL = 0x01  # W: control byte unknown or not acceptable in this state
    INFORMATION_NOT_PERMITTED = 0x02  # X: information field not allowed or unreadable
    INFORMATION_TOO_LONG = 0x04  # Y: over the negotiated length, or the reassembly bound
    INVALID_RECEIVE_SEQUENCE = 0x08  # Z: N(R) out of range


@dataclass(frozen=True)
class LinkParameters:
    """What a station offers (or, as :attr:`LinkStation.negotiated`, what was agreed)."""

    max_information_length_bytes: int = DEFAULT_MAX_INFORMATION_LENGTH_BYTES
    window_size: int = 1

    def __post_init__(self) -> None:
        if not 1 <= self.max_information_length_bytes <= MAX_INFORMATION_LENGTH_BYTES:
            raise LinkError("max_information_length_bytes must be "
                            f"1..{MAX_INFORMATION_LENGTH_BYTES}, "
                            f"not {self.max_information_length_bytes}")
        if not 1 <= self.window_size <= MAX_WINDOW_SIZE:
            raise LinkError(f"window_size must be 1..{MAX_WINDOW_SIZE}, not {self.window_size}")


#: What a station offers unless told otherwise: 128 bytes, window 1.
DEFAULT_LINK_PARAMETERS = LinkParameters()


@dataclass(frozen=True)
class ParameterNegotiation:
    """The values of one SNRM or UA negotiation field, from the sender's point of view."""

    max_transmit_length_bytes: int = DEFAULT_MAX_INFORMATION_LENGTH_BYTES
    max_receive_length_bytes: int = DEFAULT_MAX_INFORMATION_LENGTH_BYTES
    window_transmit: int = 1
    window_receive: int = 1


def _parameter(parameter: NegotiationParameter, value: int, size_bytes: int) -> bytes:
    return bytes((parameter, size_bytes)) + value.to_bytes(size_bytes, "big")


def encode_parameter_negotiation(values: ParameterNegotiation) -> bytes:
    """The SNRM/UA information field: ``81 80 LL``, lengths in 1 byte (2 if over 255),
    windows in 4 bytes."""
    body = b"".join((
        _parameter(NegotiationParameter.MAX_INFORMATION_LENGTH_TRANSMIT,
                   values.max_transmit_length_bytes,
                   1 if values.max_transmit_length_bytes <= 0xFF else 2),
        _parameter(NegotiationParameter.MAX_INFORMATION_LENGTH_RECEIVE,
                   values.max_receive_length_bytes,
                   1 if values.max_receive_length_bytes <= 0xFF else 2),
        _parameter(NegotiationParameter.WINDOW_SIZE_TRANSMIT, values.window_transmit, 4),
        _parameter(NegotiationParameter.WINDOW_SIZE_RECEIVE, values.window_receive, 4),
    ))
    return bytes((NEGOTIATION_FORMAT_ID, NEGOTIATION_GROUP_ID, len(body))) + body


def decode_parameter_negotiation(information: bytes) -> ParameterNegotiation:
    """Read an SNRM/UA information field; empty means the defaults, a missing parameter its
    default, an unknown parameter is skipped. Raises :class:`LinkError` if it is malformed."""
    if not information:
        return ParameterNegotiation()
    if len(information) < 3 or information[0] != NEGOTIATION_FORMAT_ID \
            or information[1] != NEGOTIATION_GROUP_ID:
        raise LinkError(f"negotiation field {information.hex()} does not start 81 80 LL")
    if information[2] != len(information) - 3:
        raise LinkError(f"negotiation field says {information[2]} bytes of parameters, "
                        f"has {len(information) - 3}")
    values: dict[int, int] = {}
    index = 3
    while index < len(information):
        if index + 2 > len(information):
            raise LinkError(f"negotiation parameter at byte {index} is cut short")
        parameter_id, size_bytes = information[index], information[index + 1]
        end = index + 2 + size_bytes
        if not 1 <= size_bytes <= 4 or end > len(information):
            raise LinkError(f"negotiation parameter {parameter_id:02X} has a bad length "
                            f"{size_bytes}")
        value = int.from_bytes(information[index + 2:end], "big")
        if parameter_id in _KNOWN_PARAMETER_IDS:
            if value == 0:
                raise LinkError(f"negotiation parameter {parameter_id:02X} is zero")
            values[parameter_id] = value
        index = end
    defaults = ParameterNegotiation()
    return ParameterNegotiation(
        values.get(NegotiationParameter.MAX_INFORMATION_LENGTH_TRANSMIT,
                   defaults.max_transmit_length_bytes),
        values.get(NegotiationParameter.MAX_INFORMATION_LENGTH_RECEIVE,
                   defaults.max_receive_length_bytes),
        values.get(NegotiationParameter.WINDOW_SIZE_TRANSMIT, defaults.window_transmit),
        values.get(NegotiationParameter.WINDOW_SIZE_RECEIVE, defaults.window_receive),
    )


def encode_frame_reject(rejected_control: int, send_sequence: int, receive_sequence: int,
                        reason: FrameRejectReason) -> bytes:
    """The 3-byte FRMR information: the rejected control byte, ``V(R)<<5 | V(S)<<1`` (C/R 0),
    the reason bits."""
    return bytes((rejected_control, (receive_sequence << 5) | (send_sequence << 1), int(reason)))


def describe_frame_reject(information: bytes) -> str:
    """Words for an FRMR information field, for :class:`LinkFailed` reasons and logs."""
    if len(information) != 3:
        return f"FRMR with {len(information)}-byte information {information.hex()}"
    reason = FrameRejectReason(information[2] & 0x0F)
    names = ", ".join(flag.name.lower().replace("_", " ") for flag in FrameRejectReason
                      if flag in reason and flag.name) or "no reason given"
    return (f"control byte {information[0]:02X} rejected ({names}); peer V(S)="
            f"{(information[1] >> 1) & 7}, V(R)={information[1] >> 5}")


class Role(enum.Enum):
    CLIENT = "client"
    SERVER = "server"

    # Members are singletons compared by identity: hash them by identity too, in C (Enum's
    # own __hash__ is Python code, run twice per frame for the TRANSITIONS lookup).
    __hash__ = object.__hash__


class LinkState(enum.Enum):
    DISCONNECTED = "disconnected"
    CONNECTING = "connecting"
    CONNECTED = "connected"
    DISCONNECTING = "disconnecting"

    __hash__ = object.__hash__  # as Role's


@dataclass(frozen=True)
class Connected:
    parameters: LinkParameters


@dataclass(frozen=True)
class ApduReceived:
    apdu: bytes  # LLC stripped, reassembled


@dataclass(frozen=True)
class Disconnected:
    reason: str


@dataclass(frozen=True)
class LinkFailed:
    reason: str  # retries exhausted, FRMR, ...


LinkEvent = Connected | ApduReceived | Disconnected | LinkFailed


@dataclass
class LinkCounters:
    """What a station has seen and done, for diagnostics."""

    frames_received: int = 0
    frames_sent: int = 0
    retransmissions: int = 0  # client: polls resent after a timeout
    duplicates_answered: int = 0  # server: retransmitted frames answered from the last answer
    stale_frames_ignored: int = 0
    misaddressed_frames_ignored: int = 0
    apdus_rejected_for_llc: int = 0
    frame_rejects_sent: int = 0
    last_diagnostic: str = ""


class NextState(NamedTuple):
    """What a handler returns instead of its events when the row's usual next state does not
    apply: one of the row's :attr:`Transition.alternatives` (checked), and the events."""

    state: LinkState
    events: list[LinkEvent]


Handler = Callable[["LinkStation", HdlcFrame, int], "list[LinkEvent] | NextState"]


class Transition(NamedTuple):
    """One row of :data:`TRANSITIONS`: the handler, the state the station enters after it, and
    what it usually does."""

    handler: Handler
    next_state: LinkState
    answer: FrameType | None  # the frame sent back in the usual case
    summary: str
    #: states the handler may choose instead of ``next_state`` (returning :class:`NextState`)
    alternatives: frozenset[LinkState] = frozenset()


@dataclass(slots=True)
class _ClientPoll:
    """Client-only link state: the one frame sent with P=1 that awaits its answer."""

    frame: HdlcFrame | None = None  # None: no poll outstanding
    deadline_ms: int | None = None
    retransmissions: int = 0
    deferred: bool = False  # the server said RNR: poll again (RR) at the deadline


@dataclass(slots=True)
class _ServerAnswers:
    """Server-only link state: the poll to answer and the last answer, resent for duplicates."""

    due: bool = False  # a poll to answer at frames_to_send
    last: HdlcFrame | None = None
    received_any: bool = False  # an I-frame has been accepted since the reset


#: HdlcFrame without its generated ``__new__`` (once per I-frame sent).
_new_frame = tuple.__new__
#: The control byte of an I-frame with P/F set, by N(S) then N(R): ``control_byte`` looked up
#: once for each pair.
_I_FRAME_CONTROL: tuple[tuple[int, ...], ...] = tuple(
    tuple(control_byte(FrameType.I, send_sequence=send, receive_sequence=receive)
          for receive in range(SEQUENCE_MODULUS))
    for send in range(SEQUENCE_MODULUS))


def _next(sequence: int) -> int:
    return (sequence + 1) % SEQUENCE_MODULUS


def _previous(sequence: int) -> int:
    return (sequence - 1) % SEQUENCE_MODULUS


class LinkStation:
    """One end of one HDLC link: a client (primary) or a server (secondary) station."""

    def __init__(self, role: Role, local_address: int, peer_address: int, *,
                 parameters: LinkParameters = DEFAULT_LINK_PARAMETERS,
                 retransmit_timeout_ms: int = 1000, max_retransmissions: int = 3,
                 max_reassembly_bytes: int = DEFAULT_MAX_REASSEMBLY_BYTES) -> None:
        if parameters.window_size != 1:
            raise LinkError(f"only window size 1 is supported, not {parameters.window_size}")
        if retransmit_timeout_ms <= 0:
            raise LinkError(f"retransmit_timeout_ms must be positive, not {retransmit_timeout_ms}")
        if max_retransmissions < 0:
            raise LinkError(f"max_retransmissions must be >= 0, not {max_retransmissions}")
        if max_reassembly_bytes < LLC_SIZE_BYTES:
            raise LinkError(f"max_reassembly_bytes must be >= {LLC_SIZE_BYTES}")
        self.role = role
        self.local_address = local_address
        self.peer_address = peer_address
        self.parameters = parameters
        self.retransmit_timeout_ms = retransmit_timeout_ms
        self.max_retransmissions = max_retransmissions
        self.max_reassembly_bytes = max_reassembly_bytes
        self.counters = LinkCounters()
        self.negotiated: LinkParameters | None = None
        #: The peer's last negotiation field, as received (windows larger than 1 recorded here).
        self.peer_proposal: ParameterNegotiation | None = None
        is_client = role is Role.CLIENT
        self._llc_out = LLC_CLIENT_TO_SERVER if is_client else LLC_SERVER_TO_CLIENT
        self._llc_in = LLC_SERVER_TO_CLIENT if is_client else LLC_CLIENT_TO_SERVER
        self._is_client = is_client
        self._state = LinkState.DISCONNECTED
        self._outbox: list[HdlcFrame] = []
        self._transmit_limit_bytes = DEFAULT_MAX_INFORMATION_LENGTH_BYTES
        self._receive_limit_bytes = DEFAULT_MAX_INFORMATION_LENGTH_BYTES
        self._apdu_queue: deque[bytes] = deque()  # LLC + APDU, not yet started
        self._reset_link()

    # ----------------------------------------------------------------------------------------
    # public API
    # ----------------------------------------------------------------------------------------

    @property
    def state(self) -> LinkState:
        return self._state

    def connect(self, now_ms: int) -> None:
        """Client: queue SNRM with our parameter proposal."""
        self._require_client("connect")
        if self._state is not LinkState.DISCONNECTED:
            raise LinkError(f"cannot connect: the link is {self._state.value}; "
                            "disconnect first")
        own = self.parameters.max_information_length_bytes
        proposal = ParameterNegotiation(own, own, 1, 1)
        self._apdu_queue.clear()
        self._enter(LinkState.CONNECTING, now_ms)
        self._send_poll(self._make(FrameType.SNRM, encode_parameter_negotiation(proposal)),
                        now_ms)

    def disconnect(self, now_ms: int) -> None:
        """Client: queue DISC; APDUs not yet sent are dropped. Nothing to do if disconnected."""
        self._require_client("disconnect")
        if self._state in (LinkState.DISCONNECTED, LinkState.DISCONNECTING):
            return
        self._reset_link()
        self._apdu_queue.clear()
        self._enter(LinkState.DISCONNECTING, now_ms)
        self._send_poll(self._make(FrameType.DISC), now_ms)

    def send_apdu(self, apdu: bytes, now_ms: int) -> None:
        """Queue one APDU; the LLC header is added and the result segmented to the agreed
        length. A client may queue while connecting; a server sends on the client's poll."""
        allowed = ((LinkState.CONNECTING, LinkState.CONNECTED) if self._is_client
                   else (LinkState.CONNECTED,))
        if self._state not in allowed:
            raise LinkError(f"cannot send an APDU: the link to {self.peer_address} is "
                            f"{self._state.value}; connect first")
        self._apdu_queue.append(self._llc_out + bytes(apdu))
        if self._is_client:
            self._client_start_next(now_ms)

    def receive_frame(self, frame: HdlcFrame, now_ms: int) -> list[LinkEvent]:
        """Take one frame from the peer; return what the application must know."""
        self.counters.frames_received += 1
        if frame.destination_address != self.local_address \
                or frame.source_address != self.peer_address:
            self.counters.misaddressed_frames_ignored += 1
            self._diagnose(f"frame from {frame.source_address} to {frame.destination_address} "
                           f"is not for this link ({self.peer_address} to {self.local_address})")
            return []
        row = TRANSITIONS[(self.role, self._state, CONTROL_TABLE[frame.control].frame_type)]
        result = row.handler(self, frame, now_ms)
        if result.__class__ is list:
            if row.next_state is not self._state:
                self._enter(row.next_state, now_ms)
            return result  # type: ignore[return-value]
        assert isinstance(result, NextState)
        if result.state is not row.next_state and result.state not in row.alternatives:
            raise LinkError(f"{row.handler.__name__} chose {result.state.name} after "
                            f"{row.next_state.name}'s row, which allows only "
                            f"{sorted(s.name for s in row.alternatives)}")
        self._enter(result.state, now_ms)
        return result.events

    def handle_timeout(self, now_ms: int) -> list[LinkEvent]:
        """Run any timer due at ``now_ms``: resend the outstanding poll, or give up."""
        if not self._is_client:
            return []  # a server station runs no timers
        poll = self._poll
        if poll.frame is None or poll.deadline_ms is None or now_ms < poll.deadline_ms:
            return []
        if poll.deferred:  # the server said RNR: poll again now
            self._send_poll(poll.frame, now_ms)
            return []
        if poll.retransmissions < self.max_retransmissions:
            poll.retransmissions += 1
            self.counters.retransmissions += 1
            self._outbox.append(poll.frame)
            poll.deadline_ms = now_ms + self.retransmit_timeout_ms
            return []
        what = poll.frame.frame_type.name if poll.frame.frame_type is not None else "frame"
        reason = (f"no answer from server {self.peer_address} to {what} after "
                  f"{self.max_retransmissions} retransmissions, {self.retransmit_timeout_ms} ms "
                  "apart; check the device is served and the line is sound")
        self._enter(LinkState.DISCONNECTED, now_ms)
        return [LinkFailed(reason)]

    def frames_to_send(self) -> list[HdlcFrame]:
        """Drain the frames that must go on the wire now, oldest first."""
        if not self._is_client and self._answers.due:
            self._server_answer()
        frames, self._outbox = self._outbox, []
        self.counters.frames_sent += len(frames)
        return frames

    def next_timeout_ms(self) -> int | None:
        """Absolute time (ms, the caller's clock) of the next timer, or ``None``."""
        if not self._is_client or self._poll.frame is None:
            return None
        return self._poll.deadline_ms

    # ----------------------------------------------------------------------------------------
    # shared helpers
    # ----------------------------------------------------------------------------------------

    def _reset_link(self) -> None:
        """Forget sequence numbers and every frame in flight (not the APDU queue)."""
        self._send_sequence = 0  # V(S)
        self._receive_sequence = 0  # V(R)
        self._unacked: HdlcFrame | None = None  # our last I-frame, until its N(R) comes
        self._segments: deque[bytes] = deque()  # the rest of the APDU being sent
        self._reassembly = bytearray()
        self._peer_busy = False  # the peer said RNR
        if self._is_client:
            self._poll = _ClientPoll()
        else:
            self._answers = _ServerAnswers()

    def _enter(self, state: LinkState, now_ms: int) -> None:
        """Take the state the transition table (or an allowed alternative) names, with its
        entry action: DISCONNECTED forgets the link and the queue; a client entering CONNECTED
        starts its queued APDUs."""
        was, self._state = self._state, state
        if state is was:
            return
        if state is LinkState.DISCONNECTED:
            self._reset_link()
            self._apdu_queue.clear()
            self.negotiated = None
        elif state is LinkState.CONNECTED and self._is_client:
            self._client_start_next(now_ms)

    def _stay(self, events: list[LinkEvent]) -> NextState:
        """The override that keeps the current state."""
        return NextState(self._state, events)

    def _require_client(self, what: str) -> None:
        if self.role is not Role.CLIENT:
            raise LinkError(f"a server station does not {what}; it answers the client's frames")

    def _make(self, frame_type: FrameType, information: bytes = b"", *,
              send_sequence: int = 0, receive_sequence: int = 0,
              segmented: bool = False) -> HdlcFrame:
        control = control_byte(frame_type, send_sequence=send_sequence,
                               receive_sequence=receive_sequence)
        return HdlcFrame(self.peer_address, self.local_address, control, information, segmented)

    def _diagnose(self, message: str) -> None:
        self.counters.last_diagnostic = message

    def _ignore(self, frame: HdlcFrame, now_ms: int) -> list[LinkEvent]:
        self.counters.stale_frames_ignored += 1
        self._diagnose(f"ignored control byte {frame.control:02X} while {self._state.value}")
        return []

    def _split(self, data: bytes) -> deque[bytes]:
        size = self._transmit_limit_bytes
        if 0 < len(data) <= size:  # one segment, the usual case: no generator
            return deque((data,))
        return deque(data[i:i + size] for i in range(0, len(data), size))

    def _next_information_frame(self) -> HdlcFrame:
        """Build the I-frame for the next segment and advance V(S)."""
        segments = self._segments
        if segments:
            chunk = segments.popleft()
        else:
            chunk = self._apdu_queue.popleft()
            if len(chunk) > self._transmit_limit_bytes:  # else one segment: the usual case
                segments = self._segments = self._split(chunk)
                chunk = segments.popleft()
        send_sequence = self._send_sequence
        frame = _new_frame(HdlcFrame, (
            self.peer_address, self.local_address,
            _I_FRAME_CONTROL[send_sequence][self._receive_sequence], chunk, bool(segments)))
        self._send_sequence = _next(send_sequence)
        self._unacked = frame
        return frame

    def _take_segment(self, frame: HdlcFrame) -> bytes | None:
        """Add an accepted I-frame to the reassembly; the APDU bytes (LLC included) once the
        last segment is in, else ``None``. Raises :class:`LinkError` past the bound."""
        if not frame.segmented and not self._reassembly:  # a whole APDU in one frame
            if len(frame.information) > self.max_reassembly_bytes:
                raise self._over_reassembly_bound()
            return bytes(frame.information)
        self._reassembly += frame.information
        if len(self._reassembly) > self.max_reassembly_bytes:
            self._reassembly = bytearray()
            raise self._over_reassembly_bound()
        if frame.segmented:
            return None
        data, self._reassembly = bytes(self._reassembly), bytearray()
        return data

    def _over_reassembly_bound(self) -> LinkError:
        return LinkError(f"APDU from {self.peer_address} exceeds the reassembly bound of "
                         f"{self.max_reassembly_bytes} bytes")

    def _deliver(self, data: bytes) -> list[LinkEvent]:
        if not data.startswith(self._llc_in):
            self.counters.apdus_rejected_for_llc += 1
            self._diagnose(f"dropped an APDU from {self.peer_address}: LLC {data[:3].hex()} "
                           f"is not {self._llc_in.hex()}")
            return []
        return [ApduReceived(data[LLC_SIZE_BYTES:])]

    def _agree(self, proposal: ParameterNegotiation) -> None:
        """Set our limits from the peer's proposal and our own parameters."""
        own = self.parameters.max_information_length_bytes
        self.peer_proposal = proposal
        self._transmit_limit_bytes = min(own, proposal.max_receive_length_bytes,
                                         MAX_INFORMATION_LENGTH_BYTES)
        self._receive_limit_bytes = min(own, proposal.max_transmit_length_bytes,
                                        MAX_INFORMATION_LENGTH_BYTES)
        self.negotiated = LinkParameters(
            min(self._transmit_limit_bytes, self._receive_limit_bytes), 1)

    # ----------------------------------------------------------------------------------------
    # client (primary) handlers
    # ----------------------------------------------------------------------------------------

    def _send_poll(self, frame: HdlcFrame, now_ms: int) -> None:
        self._outbox.append(frame)
        poll = self._poll
        poll.frame = frame
        poll.deadline_ms = now_ms + self.retransmit_timeout_ms
        poll.retransmissions = 0
        poll.deferred = False

    def _poll_answered(self) -> None:
        poll = self._poll
        poll.frame = None
        poll.deadline_ms = None
        poll.deferred = False

    def _awaiting_answer(self) -> bool:
        return self._poll.frame is not None and not self._poll.deferred

    def _client_start_next(self, now_ms: int) -> None:
        """Send the next segment or APDU if the link is idle and the server is ready."""
        if self._state is not LinkState.CONNECTED or self._poll.frame is not None \
                or self._peer_busy:
            return
        if self._segments or self._apdu_queue:
            self._send_poll(self._next_information_frame(), now_ms)

    def _client_connected(self, frame: HdlcFrame, now_ms: int) -> list[LinkEvent] | NextState:
        if not self._awaiting_answer():
            return self._stay(self._ignore(frame, now_ms))
        try:
            proposal = decode_parameter_negotiation(frame.information)
        except LinkError as error:
            return NextState(LinkState.DISCONNECTED, [LinkFailed(
                f"server {self.peer_address} answered SNRM with unreadable parameters: "
                f"{error}")])
        self._reset_link()
        self._agree(proposal)
        assert self.negotiated is not None
        return [Connected(self.negotiated)]  # entering CONNECTED starts the queued APDUs

    def _client_refused(self, frame: HdlcFrame, now_ms: int) -> list[LinkEvent]:
        was = self._state
        if was is LinkState.CONNECTING:
            return [Disconnected(f"server {self.peer_address} refused the connection (DM)")]
        if was is LinkState.DISCONNECTING:
            return [Disconnected(f"disconnected; server {self.peer_address} was already "
                                 "disconnected (DM)")]
        return [Disconnected(f"server {self.peer_address} reports it is disconnected (DM); "
                             "connect again")]

    def _client_rejected(self, frame: HdlcFrame, now_ms: int) -> list[LinkEvent]:
        return [LinkFailed(f"server {self.peer_address} rejected a frame (FRMR): "
                           f"{describe_frame_reject(frame.information)}; connect again")]

    def _client_disconnected(self, frame: HdlcFrame, now_ms: int
                             ) -> list[LinkEvent] | NextState:
        if not self._awaiting_answer():
            return self._stay(self._ignore(frame, now_ms))
        return [Disconnected("disconnected at our request")]

    def _client_information(self, frame: HdlcFrame, now_ms: int
                            ) -> list[LinkEvent] | NextState:
        control = CONTROL_TABLE[frame.control]
        if not self._awaiting_answer() or control.send_sequence != self._receive_sequence \
                or control.receive_sequence != self._send_sequence:
            return self._ignore(frame, now_ms)  # unsolicited, a duplicate, or stale
        if len(frame.information) > self._receive_limit_bytes:
            self._diagnose(f"ignored an I-frame of {len(frame.information)} bytes, over the "
                           f"agreed {self._receive_limit_bytes}")
            self.counters.stale_frames_ignored += 1
            return []
        self._unacked = None
        self._receive_sequence = _next(self._receive_sequence)
        self._poll_answered()
        try:
            data = self._take_segment(frame)
        except LinkError as error:
            return NextState(LinkState.DISCONNECTED, [LinkFailed(str(error))])
        if data is None:  # ask for the next segment
            self._send_poll(self._make(FrameType.RR, receive_sequence=self._receive_sequence),
                            now_ms)
            return []
        events = self._deliver(data)
        self._client_start_next(now_ms)
        return events

    def _client_receive_ready(self, frame: HdlcFrame, now_ms: int) -> list[LinkEvent]:
        if not self._awaiting_answer() or frame.receive_sequence != self._send_sequence \
                or self._reassembly:
            return self._ignore(frame, now_ms)  # stale, or not the segment we asked for
        self._unacked = None
        self._poll_answered()
        if frame.frame_type is FrameType.RNR:
            self._peer_busy = True  # poll again after a timeout, with RR
            poll = self._poll
            poll.frame = self._make(FrameType.RR, receive_sequence=self._receive_sequence)
            poll.deadline_ms = now_ms + self.retransmit_timeout_ms
            poll.deferred = True
            return []
        self._peer_busy = False
        self._client_start_next(now_ms)
        return []

    # ----------------------------------------------------------------------------------------
    # server (secondary) handlers
    # ----------------------------------------------------------------------------------------

    def _answer(self, frame: HdlcFrame) -> None:
        self._outbox.append(frame)
        self._answers.last = frame

    def _reject(self, frame: HdlcFrame, reason: FrameRejectReason, why: str) -> list[LinkEvent]:
        self.counters.frame_rejects_sent += 1
        self._diagnose(f"sent FRMR for control byte {frame.control:02X}: {why}")
        self._answer(self._make(FrameType.FRMR, encode_frame_reject(
            frame.control, self._send_sequence, self._receive_sequence, reason)))
        return []

    def _server_reject_control(self, frame: HdlcFrame, now_ms: int) -> list[LinkEvent]:
        return self._reject(frame, FrameRejectReason.INVALID_CONTROL,
                            f"not acceptable while {self._state.value}")

    def _server_disconnected_mode(self, frame: HdlcFrame, now_ms: int) -> list[LinkEvent]:
        self._outbox.append(self._make(FrameType.DM))
        return []

    def _server_connect(self, frame: HdlcFrame, now_ms: int) -> list[LinkEvent] | NextState:
        try:
            proposal = decode_parameter_negotiation(frame.information)
        except LinkError as error:
            return self._stay(self._reject(frame, FrameRejectReason.INFORMATION_NOT_PERMITTED,
                                           str(error)))
        self._reset_link()
        self._apdu_queue.clear()
        self._agree(proposal)
        answer = ParameterNegotiation(self._transmit_limit_bytes, self._receive_limit_bytes, 1, 1)
        self._outbox.append(self._make(FrameType.UA, encode_parameter_negotiation(answer)))
        assert self.negotiated is not None
        return [Connected(self.negotiated)]

    def _server_disconnect(self, frame: HdlcFrame, now_ms: int) -> list[LinkEvent]:
        self._outbox.append(self._make(FrameType.UA))
        return [Disconnected(f"client {self.peer_address} disconnected")]

    def _server_information(self, frame: HdlcFrame, now_ms: int) -> list[LinkEvent]:
        control = CONTROL_TABLE[frame.control]
        if len(frame.information) > self._receive_limit_bytes:
            self._reassembly = bytearray()
            return self._reject(frame, FrameRejectReason.INFORMATION_TOO_LONG,
                                f"{len(frame.information)} bytes, over the agreed "
                                f"{self._receive_limit_bytes}")
        if control.send_sequence != self._receive_sequence:
            answers = self._answers
            if answers.received_any \
                    and control.send_sequence == _previous(self._receive_sequence):
                # the client did not hear our answer: answer again, deliver nothing
                self.counters.duplicates_answered += 1
                if control.poll_final and not answers.due and answers.last is not None:
                    self._outbox.append(answers.last)
                return []
            return self._ignore(frame, now_ms)
        if control.receive_sequence != self._send_sequence:
            return self._reject(frame, FrameRejectReason.INVALID_RECEIVE_SEQUENCE,
                                f"N(R)={control.receive_sequence}, V(S)={self._send_sequence}")
        refusal = self._server_refusal(frame)
        if refusal is not None:
            self._reassembly = bytearray()
            return self._reject(frame, *refusal)
        self._unacked = None
        if self._segments:
            self._segments.clear()
            self._diagnose("the client sent a new I-frame before taking our whole response; "
                           "the rest of it was dropped")
        self._receive_sequence = _next(self._receive_sequence)
        self._answers.received_any = True
        data = self._take_segment(frame)  # within the bound: checked above
        if data is None:
            if control.poll_final:
                self._answer(self._make(FrameType.RR, receive_sequence=self._receive_sequence))
            return []
        self._answers.due = self._answers.due or control.poll_final
        return self._deliver(data)

    def _server_refusal(self, frame: HdlcFrame) -> tuple[FrameRejectReason, str] | None:
        """Why an in-sequence I-frame cannot be accepted (the FRMR reason and words), or None:
        it would take the APDU past the reassembly bound, or it shows a wrong LLC header."""
        have = len(self._reassembly)
        if have + len(frame.information) > self.max_reassembly_bytes:
            return (FrameRejectReason.INFORMATION_TOO_LONG,
                    f"the APDU from {self.peer_address} would exceed the reassembly bound of "
                    f"{self.max_reassembly_bytes} bytes")
        if have >= LLC_SIZE_BYTES:
            return None
        head = (bytes(self._reassembly) + frame.information[:LLC_SIZE_BYTES - have] if have
                else frame.information[:LLC_SIZE_BYTES])
        if head == self._llc_in or (frame.segmented and self._llc_in.startswith(head)):
            return None
        self.counters.apdus_rejected_for_llc += 1
        return (FrameRejectReason.INFORMATION_NOT_PERMITTED,
                f"LLC header {head.hex()} is not {self._llc_in.hex()}")

    def _server_receive_ready(self, frame: HdlcFrame, now_ms: int) -> list[LinkEvent]:
        if frame.information:
            return self._reject(frame, FrameRejectReason.INFORMATION_NOT_PERMITTED,
                                "RR/RNR carries no information")
        acknowledged = frame.receive_sequence
        busy = frame.frame_type is FrameType.RNR
        if acknowledged == self._send_sequence:
            self._unacked = None
        elif acknowledged == _previous(self._send_sequence):
            if self._unacked is None:  # repeats an acknowledgement: answer the poll anyway
                self._ignore(frame, now_ms)
                self._peer_busy = busy
                self._answers.due = self._answers.due or frame.poll_final
                return []
            self._peer_busy = busy
            if frame.poll_final and not busy:  # the client did not get our last I-frame
                self.counters.duplicates_answered += 1
                self._answer(self._unacked)
            elif frame.poll_final:
                self._answers.due = True
            return []
        else:
            return self._reject(frame, FrameRejectReason.INVALID_RECEIVE_SEQUENCE,
                                f"N(R)={acknowledged}, V(S)={self._send_sequence}")
        self._peer_busy = busy
        self._answers.due = self._answers.due or frame.poll_final
        return []

    def _server_answer(self) -> None:
        """Answer the outstanding poll: the next segment of our response, else RR."""
        self._answers.due = False
        if self._state is not LinkState.CONNECTED:
            return
        if not self._peer_busy and self._unacked is None \
                and (self._segments or self._apdu_queue):
            self._answer(self._next_information_frame())
            return
        self._answer(self._make(FrameType.RR, receive_sequence=self._receive_sequence))


# --------------------------------------------------------------------------------------------
# The transition table: (role, state, frame type received) -> handler, usual next state,
# usual answer. A frame type of None is a control byte this protocol does not use.
# --------------------------------------------------------------------------------------------

_ALL_FRAME_TYPES: tuple[FrameType | None, ...] = (*FrameType, None)
_S = LinkState
_C, _SV = Role.CLIENT, Role.SERVER
_ignore = LinkStation._ignore

TRANSITIONS: dict[tuple[Role, LinkState, FrameType | None], Transition] = {}

for _state in LinkState:
    for _frame_type in _ALL_FRAME_TYPES:
        TRANSITIONS[(_C, _state, _frame_type)] = Transition(
            _ignore, _state, None, "ignored: a client station does not answer it here")
        TRANSITIONS[(_SV, _state, _frame_type)] = Transition(
            _ignore, _state, None, "ignored")

TRANSITIONS.update({
    # client, connecting
    (_C, _S.CONNECTING, FrameType.UA): Transition(
        LinkStation._client_connected, _S.CONNECTED, None,
        "agreed parameters read; V(S)=V(R)=0; Connected; queued APDUs start; unsolicited: "
        "ignored; unreadable parameters: LinkFailed", frozenset({_S.CONNECTING,
                                                                _S.DISCONNECTED})),
    (_C, _S.CONNECTING, FrameType.DM): Transition(
        LinkStation._client_refused, _S.DISCONNECTED, None, "Disconnected: refused"),
    (_C, _S.CONNECTING, FrameType.FRMR): Transition(
        LinkStation._client_rejected, _S.DISCONNECTED, None, "LinkFailed"),
    # client, connected
    (_C, _S.CONNECTED, FrameType.I): Transition(
        LinkStation._client_information, _S.CONNECTED, None,
        "response segment: RR(P=1) asks for the next; the last gives ApduReceived; over the "
        "reassembly bound: LinkFailed", frozenset({_S.DISCONNECTED})),
    (_C, _S.CONNECTED, FrameType.RR): Transition(
        LinkStation._client_receive_ready, _S.CONNECTED, None,
        "acknowledges our I-frame: next segment or queued APDU goes out (I, P=1)"),
    (_C, _S.CONNECTED, FrameType.RNR): Transition(
        LinkStation._client_receive_ready, _S.CONNECTED, None,
        "acknowledges; no I-frames until RR; RR(P=1) poll after the retransmit timeout"),
    (_C, _S.CONNECTED, FrameType.DM): Transition(
        LinkStation._client_refused, _S.DISCONNECTED, None, "Disconnected"),
    (_C, _S.CONNECTED, FrameType.FRMR): Transition(
        LinkStation._client_rejected, _S.DISCONNECTED, None, "LinkFailed"),
    # client, disconnecting
    (_C, _S.DISCONNECTING, FrameType.UA): Transition(
        LinkStation._client_disconnected, _S.DISCONNECTED, None,
        "Disconnected; unsolicited: ignored", frozenset({_S.DISCONNECTING})),
    (_C, _S.DISCONNECTING, FrameType.DM): Transition(
        LinkStation._client_refused, _S.DISCONNECTED, None, "Disconnected"),
    (_C, _S.DISCONNECTING, FrameType.FRMR): Transition(
        LinkStation._client_rejected, _S.DISCONNECTED, None, "LinkFailed"),
})

for _frame_type in _ALL_FRAME_TYPES:
    TRANSITIONS[(_SV, _S.DISCONNECTED, _frame_type)] = Transition(
        LinkStation._server_disconnected_mode, _S.DISCONNECTED, FrameType.DM,
        "DM(F=1): not connected")
    TRANSITIONS[(_SV, _S.CONNECTED, _frame_type)] = Transition(
        LinkStation._server_reject_control, _S.CONNECTED, FrameType.FRMR,
        "FRMR(F=1), reason W: not acceptable here")

TRANSITIONS.update({
    (_SV, _S.DISCONNECTED, FrameType.SNRM): Transition(
        LinkStation._server_connect, _S.CONNECTED, FrameType.UA,
        "UA(F=1) with the agreed parameters; V(S)=V(R)=0; Connected; unreadable parameters: "
        "FRMR, reason X", frozenset({_S.DISCONNECTED})),
    (_SV, _S.DISCONNECTED, FrameType.UA): Transition(_ignore, _S.DISCONNECTED, None, "ignored"),
    (_SV, _S.DISCONNECTED, FrameType.DM): Transition(_ignore, _S.DISCONNECTED, None, "ignored"),
    (_SV, _S.DISCONNECTED, FrameType.FRMR): Transition(_ignore, _S.DISCONNECTED, None,
                                                       "ignored"),
    (_SV, _S.DISCONNECTED, FrameType.UI): Transition(_ignore, _S.DISCONNECTED, None, "ignored"),
    (_SV, _S.DISCONNECTED, None): Transition(
        LinkStation._server_reject_control, _S.DISCONNECTED, FrameType.FRMR,
        "FRMR(F=1), reason W: unknown control byte"),
    (_SV, _S.CONNECTED, FrameType.SNRM): Transition(
        LinkStation._server_connect, _S.CONNECTED, FrameType.UA,
        "reset: UA(F=1), V(S)=V(R)=0, pending traffic dropped; Connected"),
    (_SV, _S.CONNECTED, FrameType.DISC): Transition(
        LinkStation._server_disconnect, _S.DISCONNECTED, FrameType.UA,
        "UA(F=1); Disconnected"),
    (_SV, _S.CONNECTED, FrameType.I): Transition(
        LinkStation._server_information, _S.CONNECTED, FrameType.RR,
        "non-final segment: RR(F=1); last: ApduReceived, then the response I-frame(s) or "
        "RR(F=1); a duplicate (N(S)=V(R)-1): the last answer again; too long or a wrong LLC: "
        "FRMR, V(R) unchanged"),
    (_SV, _S.CONNECTED, FrameType.RR): Transition(
        LinkStation._server_receive_ready, _S.CONNECTED, FrameType.RR,
        "next response segment (I, F=1) if any, else RR(F=1); N(R)=V(S)-1: our I-frame "
        "again (if none is unacknowledged, answered like any poll)"),
    (_SV, _S.CONNECTED, FrameType.RNR): Transition(
        LinkStation._server_receive_ready, _S.CONNECTED, FrameType.RR,
        "acknowledges; RR(F=1); no I-frames until the client sends RR"),
    (_SV, _S.CONNECTED, FrameType.UI): Transition(_ignore, _S.CONNECTED, None, "ignored"),
})

#: States each role can be in (a server goes straight between these two).
REACHABLE_STATES: dict[Role, tuple[LinkState, ...]] = {
    Role.CLIENT: tuple(LinkState),
    Role.SERVER: (LinkState.DISCONNECTED, LinkState.CONNECTED),
}


def describe_transitions(role: Role) -> str:
    """The transition table of ``role`` as a Markdown table, for docs/protocol.md."""
    lines = ["| state | frame received | answer | next state | what happens |",
             "|---|---|---|---|---|"]
    for state in REACHABLE_STATES[role]:
        for frame_type in _ALL_FRAME_TYPES:
            row = TRANSITIONS[(role, state, frame_type)]
            received = frame_type.name if frame_type is not None else "unknown control"
            answer = row.answer.name if row.answer is not None else "-"
            next_state = row.next_state.name + "".join(
                f" or {s.name}" for s in sorted(row.alternatives, key=lambda s: s.name))
            lines.append(f"| {state.name} | {received} | {answer} | {next_state} "
                         f"| {row.summary} |")
    return "\n".join(lines)
