"""The fast path of the APDU body codec: :mod:`struct` formats derived from the Construct layouts.

:mod:`protocol.apdu` holds the body layouts (the single source of truth for every byte) and
the interpreted Construct codec, the reference. At import it asks :func:`derive_fixed_codec`
for a :class:`FixedBodyCodec` of each layout whose size is fixed and whose every field is of a
kind this module knows: big-endian integers (``FormatField``), ``Flag``, fixed-length
``Bytes``, adapters over an integer that use neither context nor path (the caller names them:
the enum and flag-set adapters) and nested records of those; an empty body (``Pass``) too. A
layout with any other field (a length prefix, an array, text, a validator added later) gets no
fast codec and stays with Construct.

A fast codec never decides a case Construct would decide otherwise: it decodes only bytes of
exactly the layout's size, and whenever a value is not one it takes as is (an enum value not
in the enum, bytes of the wrong length, an integer out of range, a mapping without a field) it
answers None, and the caller runs Construct, which raises what it always raised. Tests prove
both codecs equal for every command and body (tests/protocol/test_apdu_codec.py).

This module does no I/O, and keeps no state beyond what it derives from a layout.
"""

from __future__ import annotations

import struct
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from operator import attrgetter, itemgetter
from typing import Any

from construct import Adapter, Bytes, Construct, Flag, FormatField, Pass, Renamed, Struct

__all__ = ["FixedBodyCodec", "derive_fixed_codec"]

#: ``struct`` code of Construct's ``Flag`` (a byte: 0 is False, anything else True, built as
#: 0 / 1 from the value's truth: what ``?`` does).
_FLAG_CODE = "?"


@dataclass(frozen=True)
class _Field:
    """One named field of a record, as the fast path reads and writes it."""

    name: str
    #: the struct codes of its bytes (a nested record: all of its fields' codes)
    codes: str
    #: an adapter field: its Construct adapter (``_decode`` / ``_encode`` run as Construct
    #: would run them)
    adapter: Adapter | None = None
    #: a fixed-length bytes field: its length (a value of any other length goes to Construct)
    bytes_length: int | None = None
    #: a nested record: its codec
    record: FixedBodyCodec | None = None


class FixedBodyCodec:
    """Encode and decode one fixed-size body layout with one ``struct.Struct``.

    ``decode(data)`` -> the body (an instance of ``body_type``), or None when Construct must
    decide (see the module docstring); ``encode(body)`` -> bytes, or None likewise. ``body``
    is an instance of ``body_type`` or a plain ``dict`` named as in the layout (nested records
    as dicts)."""

    __slots__ = ("_fields", "_get_attributes", "_get_items", "_plain_encode", "body_type",
                 "decode", "packer", "size")

    def __init__(self, body_type: type, fields: Sequence[_Field]) -> None:
        self.body_type = body_type
        self._fields = tuple(fields)
        self.packer = struct.Struct(">" + "".join(field.codes for field in self._fields))
        self.size = self.packer.size
        names = [field.name for field in self._fields]
        self._get_attributes = _getter(attrgetter, names)
        self._get_items = _getter(itemgetter, names)
        # integers and flags only: the unpacked tuple is the body's arguments as they are, and
        # struct packs the values as Construct would (bytes are plain to decode only: struct
        # pads or cuts a value of another length, Construct refuses it)
        plain = [field.adapter is None and field.record is None for field in self._fields]
        self.decode = self._decode_plain if all(plain) else self._decode_converted
        self._plain_encode = all(is_plain and field.bytes_length is None
                                 for is_plain, field in zip(plain, self._fields, strict=True))

    # --------------------------------------------------------------------------- decode
    def _decode_plain(self, data: bytes) -> Any:
        if len(data) != self.size:
            return None
        return self.body_type(*self.packer.unpack(data))

    def _decode_converted(self, data: bytes) -> Any:
        if len(data) != self.size:
            return None
        try:
            body, _ = self._make(self.packer.unpack(data), 0)
        except Exception:  # a value Construct refuses (an unknown enum value): it says why
            return None
        return body

    def _make(self, values: tuple[Any, ...], start: int) -> tuple[Any, int]:
        """The body made of ``values[start:]``, and the index after the values it took."""
        arguments = []
        index = start
        for field in self._fields:
            if field.record is not None:
                value, index = field.record._make(values, index)
            else:
                value = values[index]
                index += 1
                if field.adapter is not None:
                    value = field.adapter._decode(value, None, field.name)
            arguments.append(value)
        return self.body_type(*arguments), index

    # --------------------------------------------------------------------------- encode
    def encode(self, body: Any) -> bytes | None:
        values: list[Any] = []
        try:
            if not self._collect(body, values):
                return None
            return self.packer.pack(*values)
        except Exception:  # a value Construct refuses (out of range, not a member): it says why
            return None

    def _collect(self, body: Any, values: list[Any]) -> bool:
        """Append the wire values of ``body``'s fields; False when Construct must build it."""
        if type(body) is self.body_type:
            own = self._get_attributes(body)
        elif type(body) is dict:
            own = self._get_items(body)  # KeyError for a missing field: Construct says which
        else:
            return False
        if self._plain_encode:
            values.extend(own)
            return True
        for field, value in zip(self._fields, own, strict=True):
            if field.record is not None:
                if not field.record._collect(value, values):
                    return False
                continue
            if field.adapter is not None:
                value = field.adapter._encode(value, None, field.name)
            elif field.bytes_length is not None and (
                    type(value) is not bytes or len(value) != field.bytes_length):
                return False
            values.append(value)
        return True


def _getter(make: Callable[..., Callable[[Any], Any]], names: list[str]
            ) -> Callable[[Any], tuple[Any, ...]]:
    """``attrgetter`` / ``itemgetter`` of ``names`` that always returns a tuple."""
    if not names:
        return lambda _: ()
    if len(names) == 1:
        one = make(names[0])
        return lambda obj: (one(obj),)
    return make(*names)


def derive_fixed_codec(layout: Construct, body_type: type,
                       nested_type: Callable[[Construct], type],
                       adapters: tuple[type[Adapter], ...]) -> FixedBodyCodec | None:
    """The fast codec of ``layout`` (a ``Struct`` or ``Pass``) whose typed body class is
    ``body_type``, or None when a field is of a kind it does not know. ``nested_type`` gives
    the body class of a nested record's layout; ``adapters``: the adapter classes whose
    ``_decode`` / ``_encode`` use neither context nor path (over an integer field)."""
    if layout is Pass:
        return FixedBodyCodec(body_type, [])
    if not isinstance(layout, Struct):
        return None
    fields = []
    for subcon in layout.subcons:
        if not subcon.name:
            return None  # an unnamed member (a check, a terminator, padding): Construct's
        field = _derive_field(subcon.name, subcon, nested_type, adapters)
        if field is None:
            return None
        fields.append(field)
    codec = FixedBodyCodec(body_type, fields)
    if codec.size != layout.sizeof():
        raise TypeError(f"{body_type.__name__}: derived format {codec.packer.format} is "
                        f"{codec.size} bytes, its layout {layout.sizeof()}")
    return codec


def _derive_field(name: str, subcon: Construct, nested_type: Callable[[Construct], type],
                  adapters: tuple[type[Adapter], ...]) -> _Field | None:
    while isinstance(subcon, Renamed):
        subcon = subcon.subcon
    if subcon is Flag:
        return _Field(name, _FLAG_CODE)
    code = _integer_code(subcon)
    if code is not None:
        return _Field(name, code)
    if type(subcon) in adapters:
        code = _integer_code(subcon.subcon)
        return None if code is None else _Field(name, code, adapter=subcon)
    if type(subcon) is Bytes and isinstance(subcon.length, int):
        return _Field(name, f"{subcon.length}s", bytes_length=subcon.length)
    if type(subcon) is Struct:
        record = derive_fixed_codec(subcon, nested_type(subcon), nested_type, adapters)
        if record is None:
            return None
        return _Field(name, record.packer.format[1:], record=record)
    return None


def _integer_code(subcon: Construct) -> str | None:
    """The struct code of a big-endian integer field, else None."""
    if type(subcon) is FormatField and subcon.fmtstr[0] == ">" and len(subcon.fmtstr) == 2 \
            and subcon.fmtstr[1] in "bBhHlLqQ":
        return subcon.fmtstr[1]
    return None
