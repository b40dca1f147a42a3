"""Sans-I/O stream decoder: link bytes in any chunking -> verified HDLC frames, counted discards.

:class:`FrameStreamDecoder` takes the bytes a port delivered, however they were split, and
returns every complete frame whose length, HCS, closing flag and FCS check. It hunts for the
7E flag with ``bytes.find``, reads the length from the format field and checks the candidate
in place through :attr:`protocol.hdlc_codec.FrameCodec.decode_at` (the layout lives in
:mod:`protocol.hdlc`, never here).

Resynchronisation: a rejected candidate (garbage that happens to hold a 7E, a frame with a bad
HCS or FCS, a truncated frame, a length that cannot be right) is dropped one flag at a time, so
a good frame that starts inside the bytes the candidate claimed is still found. Bad format,
length and HCS are seen as soon as the header arrives; only a candidate with a correct HCS (in
practice a real frame, cut short) holds the frames behind it until the bytes its length field
claims have arrived. A frame's closing flag may also open the next frame (shared flags).

This module must never raise on any byte sequence, never do I/O, and never keep more than one
maximum frame (:data:`~protocol.hdlc.MAX_FRAME_SIZE_BYTES`) of bytes between calls.
"""

from __future__ import annotations

from dataclasses import dataclass

from protocol.hdlc import FLAG, FLAG_BYTE, HdlcFrame
from protocol.hdlc_codec import CAN_START_FORMAT_FIELD, DEFAULT_CODEC, FrameCodec, FrameVerdict

__all__ = ["FrameStreamDecoder", "StreamCounters"]


@dataclass(slots=True)
class StreamCounters:
    """What the decoder produced and what it threw away, and why (diagnostics).

    ``garbage_bytes`` counts every received byte that is not part of a decoded frame (noise,
    the bytes of rejected candidates, surplus fill flags). Each other counter counts rejected
    candidates, that is 7E flags followed by something other than a 7E, by reason. A frame's
    closing flag, tried as the opening flag of a following frame (shared flag), is counted
    only when what follows it had a valid format field and was rejected for another reason."""

    frames_decoded: int = 0
    garbage_bytes: int = 0
    bad_format: int = 0  # format type is not 0xA, or an address of 3 or more than 4 bytes
    bad_length: int = 0  # the 11-bit length cannot hold the header, FCS (HCS, information)
    bad_hcs: int = 0
    bad_fcs: int = 0
    truncated: int = 0  # no closing flag where the length says the frame ends

    @property
    def candidates_rejected(self) -> int:
        """Candidates rejected for any reason."""
        return self.bad_format + self.bad_length + self.bad_hcs + self.bad_fcs + self.truncated


_NEED_MORE = FrameVerdict.NEED_MORE
_BAD_FORMAT = FrameVerdict.BAD_FORMAT
_COUNTER_BY_VERDICT = {
    FrameVerdict.BAD_FORMAT: "bad_format",
    FrameVerdict.BAD_LENGTH: "bad_length",
    FrameVerdict.BAD_HCS: "bad_hcs",
    FrameVerdict.BAD_FCS: "bad_fcs",
    FrameVerdict.TRUNCATED: "truncated",
}


class FrameStreamDecoder:
    """Bytes in (chunks of any size), verified :class:`~protocol.hdlc.HdlcFrame`s out.

    >>> decoder = FrameStreamDecoder()
    >>> frames = decoder.feed(received_bytes)          # doctest: +SKIP
    >>> decoder.counters.bad_fcs                        # doctest: +SKIP
    """

    __slots__ = ("_decode_at", "_pending", "_pending_opens_on_closing_flag", "counters")

    def __init__(self, codec: FrameCodec = DEFAULT_CODEC) -> None:
        """Decode through ``codec`` (and its caches); by default the shared one."""
        self.counters = StreamCounters()
        self._decode_at = codec.decode_at
        # bytes kept between calls: empty, or a candidate frame's prefix from its 7E flag
        self._pending = b""
        # the kept 7E is the closing flag of the last frame decoded (it may open the next)
        self._pending_opens_on_closing_flag = False

    @property
    def pending_bytes(self) -> int:
        """Bytes held until more arrive: always less than one maximum frame."""
        return len(self._pending)

    def feed(self, data: bytes) -> list[HdlcFrame]:
        """Take the next bytes received; return the frames they complete, oldest first."""
        pending = self._pending
        # index of the closing flag of the frame just decoded, tried as an opening flag too
        closing_flag = -1
        if not pending:
            buffer = bytes(data)
        elif (self._pending_opens_on_closing_flag and len(pending) == 1
              and data[:1] == FLAG_BYTE):
            # the last frame's closing flag, then an opening flag of the next frame's own: the
            # kept flag opens nothing (it would be rejected as a bad format, uncounted), so it
            # is dropped before a decode is tried on it
            buffer = bytes(data)
        else:
            buffer = pending + data
            if self._pending_opens_on_closing_flag:
                closing_flag = 0
        size = len(buffer)
        frames: list[HdlcFrame] = []
        append = frames.append
        find = buffer.find
        decode = self._decode_at
        can_start_format = CAN_START_FORMAT_FIELD
        counters = self.counters
        garbage_bytes = 0
        position = 0
        while True:
            flag = find(FLAG_BYTE, position)
            if flag < 0:
                garbage_bytes += size - position
                position = size
                break
            garbage_bytes += flag - position
            frame, verdict, stop = decode(buffer, flag)
            if frame is not None:
                append(frame)
                if stop == size:
                    # the closing flag ends the bytes: kept, it may open the next frame (a
                    # lone flag is all a decode would say NEED_MORE to)
                    position = closing_flag = stop - 1
                    break
                if can_start_format[buffer[stop]]:
                    # the closing flag may open the next frame (shared flag): try it
                    position = closing_flag = stop - 1
                else:  # an opening flag of its own follows, or garbage
                    position = stop
                continue
            if verdict is _NEED_MORE:
                position = flag
                break
            position = flag + 1
            if flag == closing_flag:
                if verdict is not _BAD_FORMAT:
                    reason = _COUNTER_BY_VERDICT[verdict]
                    setattr(counters, reason, getattr(counters, reason) + 1)
                continue
            garbage_bytes += 1
            if verdict is _BAD_FORMAT and buffer[position] == FLAG:
                continue  # a surplus fill flag, not a candidate
            reason = _COUNTER_BY_VERDICT[verdict]
            setattr(counters, reason, getattr(counters, reason) + 1)
        self._pending = buffer[position:]  # position <= size: b"" when all is used
        # closing_flag is -1 or the index of a flag byte in the buffer: never past its end
        self._pending_opens_on_closing_flag = position == closing_flag
        counters.frames_decoded += len(frames)
        counters.garbage_bytes += garbage_bytes
        return frames
