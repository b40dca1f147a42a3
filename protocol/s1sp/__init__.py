"""The S1SP adapter: DUIS Service Requests in, Secure-like APDUs out, DUIS responses back.

Public entry points: :class:`protocol.s1sp.adapter.S1spAdapter`,
:class:`protocol.s1sp.channel.DeviceChannel` / :class:`~protocol.s1sp.channel.InProcessChannel`
and :class:`protocol.s1sp.annex_c.AnnexCTable`. This package never talks to a port itself: every
device exchange goes through a ``DeviceChannel``.
"""
