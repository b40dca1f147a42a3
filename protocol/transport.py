"""Byte transports: THE only module of secure-emu that does port I/O.

A :class:`ByteTransport` moves raw bytes, nothing else: ``write(data)``,
``read(max_bytes, timeout_ms)`` (``b""`` when nothing arrived in time), ``close()`` and, where
the operating system has one, ``fileno()`` so a serving loop can wait on many transports with
:mod:`selectors`. Implementations:

- :class:`SerialTransport`: a pyserial port or URL (``/dev/ttyUSB0``, ``loop://``,
  ``socket://host:port``, ``rfc2217://...``) through ``serial.serial_for_url``.
- :class:`PtyPair`: a pseudo-terminal pair from ``os.openpty()``. The serving side holds the
  master; clients open :attr:`PtyPair.client_path` (with pyserial, or :func:`open_port`, which
  opens pty slaves directly). The slave is put in raw mode (``tty.setraw``) so every byte passes
  unchanged, and the pair keeps its own slave descriptor open so that the master never sees a
  hang-up between clients. No modem-line ioctl is ever issued on a pty.
- :class:`FdTransport`: any readable/writable descriptor (the pty master, a pty slave).
- :class:`SocketTransport` (TCP client, or one accepted connection) and :class:`TcpListener`
  (127.0.0.1 by default; port 0 picks a free port).

Waiting uses :mod:`selectors` (or the port's own timeout for pyserial URLs without a
descriptor): there is no busy loop. A transport makes its private selector only when a read
must wait, so a server holding a thousand connections holds a thousand descriptors, not two
thousand. ``write_some(data)`` (on :class:`FdTransport` and :class:`SocketTransport`) never
blocks: it hands the OS what it takes now and says how much; a serving loop keeps the rest
and writes it when the descriptor is writable. :meth:`TcpListener.accept_nowait` never
blocks either, and turns running out of descriptors (EMFILE, ENFILE) or memory into
:class:`AcceptFailedError` rather than an uncaught ``OSError``. Timeouts are integer
milliseconds; pyserial and sockets need seconds, converted only at the call into them.

This module must never interpret the bytes it moves (that is :mod:`protocol.stream` and
:mod:`protocol.link`) and never retry on its own: a lost peer is a :class:`TransportClosedError`.
"""

from __future__ import annotations

import contextlib
import errno
import os
import resource
import select
import selectors
import socket
import stat
import termios
import time
import tty
from typing import Protocol, runtime_checkable

import serial

from protocol.errors import TransportClosedError, TransportError

__all__ = [
    "DEFAULT_ACCEPTED_SEND_BUFFER_BYTES",
    "DEFAULT_BAUDRATE",
    "AcceptFailedError",
    "ByteTransport",
    "FdTransport",
    "PtyPair",
    "SerialTransport",
    "SocketTransport",
    "TcpListener",
    "TransportClosedError",
    "TransportError",
    "connect_tcp",
    "is_pty_slave_path",
    "open_port",
    "parse_host_port",
    "raise_descriptor_limit",
]

#: Baud rate used when a caller names none (only real serial ports care).
DEFAULT_BAUDRATE = 9600
#: How long a write may wait for the peer to drain before the transport gives up.
DEFAULT_WRITE_TIMEOUT_MS = 2000
#: Kernel send buffer of each connection a :class:`TcpListener` accepts (``SO_SNDBUF``): a
#: fixed size bounds the kernel memory a client that never reads can pin (autotuning lets it
#: grow to megabytes), and makes a serving loop see such a client soon.
DEFAULT_ACCEPTED_SEND_BUFFER_BYTES = 64 * 1024
#: Linux major device numbers of Unix98 pty slaves (/dev/pts/N).
_PTY_SLAVE_MAJORS = range(136, 144)


@runtime_checkable
class ByteTransport(Protocol):
    """Raw bytes in and out of one port or connection."""

    def write(self, data: bytes) -> None:
        """Send every byte of ``data`` (blocks until handed to the OS)."""
        ...

    def read(self, max_bytes: int, timeout_ms: int) -> bytes:
        """Up to ``max_bytes`` bytes, waiting at most ``timeout_ms`` for the first; ``b""``
        when none arrived in time. Raises :class:`TransportClosedError` if the peer is gone."""
        ...

    def close(self) -> None:
        """Release the port; idempotent."""
        ...


class AcceptFailedError(TransportError):
    """A listener could not take a waiting connection now; ``out_of_resources`` when the
    process or the system ran out of descriptors or memory (the connection stays queued)."""

    def __init__(self, message: str, *, out_of_resources: bool) -> None:
        super().__init__(message)
        self.out_of_resources = out_of_resources


#: accept() errors that mean "out of descriptors or memory": try again once one is freed.
_OUT_OF_RESOURCES = frozenset({errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM})


class _LazyReadWait:
    """A ``poll`` object waiting for one descriptor to become readable, made on the first wait
    and kept (a transport read only without waiting, as a serving loop does, never makes one).
    ``select.poll`` directly, not :mod:`selectors`: it is on every client's round trip."""

    __slots__ = ("_poll",)

    def __init__(self) -> None:
        self._poll: select.poll | None = None

    def wait(self, fd: int, timeout_ms: int) -> bool:
        """Whether ``fd`` became readable (or hung up) within ``timeout_ms`` (``False`` at once
        for 0)."""
        if timeout_ms <= 0:
            return False
        if self._poll is None:
            self._poll = select.poll()
            self._poll.register(fd, select.POLLIN)
        return bool(self._poll.poll(timeout_ms))

    def close(self) -> None:
        self._poll = None


def _seconds(timeout_ms: int) -> float:
    """Milliseconds as the float seconds that selectors, sockets and pyserial take."""
    return max(0, timeout_ms) / 1000


class FdTransport:
    """A transport over one non-blocking file descriptor (pty master or slave)."""

    def __init__(self, fd: int, *, name: str = "fd", owns_fd: bool = True,
                 write_timeout_ms: int = DEFAULT_WRITE_TIMEOUT_MS) -> None:
        self._fd = fd
        self.name = name
        self._owns_fd = owns_fd
        self._write_timeout_ms = write_timeout_ms
        os.set_blocking(fd, False)
        self._read_wait = _LazyReadWait()
        self._closed = False

    def fileno(self) -> int:
        return self._fd

    def _check_open(self) -> None:
        if self._closed:
            raise TransportClosedError(f"{self.name} is closed")

    def read(self, max_bytes: int, timeout_ms: int) -> bytes:
        self._check_open()
        # A caller that may wait (a client after its request) waits first: its answer is
        # rarely there already, and a read that fails costs a system call and an exception.
        if timeout_ms > 0 and not self._read_wait.wait(self._fd, timeout_ms):
            return b""
        try:
            data = os.read(self._fd, max_bytes)
        except BlockingIOError:
            return b""
        except OSError as error:
            raise self._closed_error(error) from error
        if not data:
            raise TransportClosedError(f"{self.name}: the other end closed")
        return data

    def _closed_error(self, error: OSError) -> TransportError:
        if error.errno in (errno.EIO, errno.EBADF, errno.ENXIO):
            return TransportClosedError(f"{self.name}: the other end went away ({error.strerror})")
        return TransportError(f"{self.name}: read failed: {error.strerror}")

    def write(self, data: bytes) -> None:
        self._check_open()
        view = memoryview(data)
        deadline_ns = time.monotonic_ns() + self._write_timeout_ms * 1_000_000
        while view:
            try:
                written = os.write(self._fd, view)
            except BlockingIOError:
                written = 0
            except OSError as error:
                raise TransportClosedError(
                    f"{self.name}: write failed: {error.strerror}") from error
            view = view[written:]
            if view:
                left_ms = (deadline_ns - time.monotonic_ns()) // 1_000_000
                if left_ms <= 0 or not self._wait_writable(int(left_ms)):
                    self._on_write_stalled(bytes(view))
                    return

    def write_some(self, data: bytes | memoryview) -> int:
        """Write what the descriptor takes now, without waiting; the number of bytes taken."""
        self._check_open()
        try:
            return os.write(self._fd, data)
        except BlockingIOError:
            return 0
        except OSError as error:
            raise TransportClosedError(f"{self.name}: write failed: {error.strerror}") from error

    def _wait_writable(self, timeout_ms: int) -> bool:
        with selectors.DefaultSelector() as selector:
            selector.register(self._fd, selectors.EVENT_WRITE)
            return bool(selector.select(_seconds(timeout_ms)))

    def _on_write_stalled(self, unsent: bytes) -> None:
        raise TransportError(f"{self.name}: the other end has not read for "
                             f"{self._write_timeout_ms} ms; {len(unsent)} bytes not sent")

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._read_wait.close()
        if self._owns_fd:
            with contextlib.suppress(OSError):
                os.close(self._fd)

    def __enter__(self) -> FdTransport:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


class _PtyMasterTransport(FdTransport):
    """The master side: when nobody reads the slave, stale output is dropped, not blocked on."""

    def __init__(self, pair: PtyPair, master_fd: int) -> None:
        super().__init__(master_fd, name=f"pty master for {pair.client_path}")
        self._pair = pair

    def _on_write_stalled(self, unsent: bytes) -> None:
        # No client is reading: whatever sits in the slave's input queue is stale. Drop it so
        # the serving loop never blocks on a client that went away, then try once more.
        self._pair.discard_unread_client_input()
        with contextlib.suppress(OSError):
            os.write(self._fd, unsent)

    def discard_unread_output(self) -> None:
        """Drop what was written for clients and never read (a serving loop dropping its own
        unwritten output calls this so the next client starts clean)."""
        self._pair.discard_unread_client_input()

    def close(self) -> None:
        super().close()
        self._pair.close()


class PtyPair:
    """A pseudo-terminal pair: serve on :attr:`server`, clients open :attr:`client_path`."""

    def __init__(self) -> None:
        master_fd, slave_fd = os.openpty()
        tty.setraw(slave_fd)
        self._slave_fd = slave_fd
        self.client_path: str = os.ttyname(slave_fd)
        self._closed = False
        self.server: FdTransport = _PtyMasterTransport(self, master_fd)

    def discard_unread_client_input(self) -> None:
        """Drop bytes written for clients that nobody read."""
        if not self._closed:
            with contextlib.suppress(termios.error, OSError):
                termios.tcflush(self._slave_fd, termios.TCIFLUSH)

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self.server.close()
        with contextlib.suppress(OSError):
            os.close(self._slave_fd)

    def __enter__(self) -> PtyPair:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


class SerialTransport:
    """A pyserial port or URL. Waits with selectors where the port has a descriptor, else
    with the port's own read timeout."""

    def __init__(self, port: serial.SerialBase) -> None:
        self._port = port
        self.name = str(port.port)
        self._fd: int | None = None
        with contextlib.suppress(AttributeError, OSError, serial.SerialException,
                                 NotImplementedError):
            fd = port.fileno()  # type: ignore[attr-defined]
            self._fd = fd if isinstance(fd, int) else None
        self._selector: selectors.BaseSelector | None = None
        if self._fd is not None:
            self._selector = selectors.DefaultSelector()
            self._selector.register(self._fd, selectors.EVENT_READ)
            port.timeout = 0
        self._timeout_ms: int | None = None

    @classmethod
    def open(cls, url: str, *, baudrate: int = DEFAULT_BAUDRATE) -> SerialTransport:
        """Open a serial device or pyserial URL; :class:`TransportError` if it cannot."""
        try:
            port = serial.serial_for_url(url, baudrate=baudrate, timeout=0,
                                         write_timeout=_seconds(DEFAULT_WRITE_TIMEOUT_MS))
        except (serial.SerialException, ValueError, OSError) as error:
            hint = " (is it a serial port?)" if "ioctl" in str(error) else ""
            raise TransportError(f"cannot open port {url!r}: {error}{hint}") from error
        return cls(port)

    def fileno(self) -> int:
        if self._fd is None:
            raise OSError(f"{self.name} has no file descriptor")
        return self._fd

    def reset_input(self) -> None:
        """Forget bytes that arrived before now (stale answers for an earlier client)."""
        with contextlib.suppress(serial.SerialException, OSError):
            self._port.reset_input_buffer()

    def read(self, max_bytes: int, timeout_ms: int) -> bytes:
        try:
            if self._selector is not None:
                if not self._port.in_waiting and not self._selector.select(_seconds(timeout_ms)):
                    return b""
                return bytes(self._port.read(max(1, min(max_bytes, self._port.in_waiting))))
            waiting = self._port.in_waiting
            if waiting:
                return bytes(self._port.read(min(max_bytes, waiting)))
            if self._timeout_ms != timeout_ms:
                self._port.timeout = _seconds(timeout_ms)
                self._timeout_ms = timeout_ms
            first = bytes(self._port.read(1))
            if first and max_bytes > 1 and self._port.in_waiting:
                first += bytes(self._port.read(min(max_bytes - 1, self._port.in_waiting)))
            return first
        except serial.SerialException as error:
            raise TransportClosedError(f"{self.name}: {error}") from error
        except OSError as error:
            raise TransportClosedError(f"{self.name}: {error.strerror or error}") from error

    def write(self, data: bytes) -> None:
        try:
            self._port.write(data)
            self._port.flush()
        except serial.SerialTimeoutException as error:
            raise TransportError(f"{self.name}: write timed out: {error}") from error
        except (serial.SerialException, OSError) as error:
            raise TransportClosedError(f"{self.name}: write failed: {error}") from error

    def close(self) -> None:
        if self._selector is not None:
            self._selector.close()
            self._selector = None
        with contextlib.suppress(serial.SerialException, OSError):
            self._port.close()

    def __enter__(self) -> SerialTransport:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


class SocketTransport:
    """One TCP connection (a client's, or one the listener accepted)."""

    def __init__(self, sock: socket.socket, *, name: str | None = None) -> None:
        sock.setblocking(False)
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self._sock = sock
        try:
            peer = sock.getpeername()
            self.name = name or f"tcp {peer[0]}:{peer[1]}"
        except OSError:
            self.name = name or "tcp"
        self._read_wait = _LazyReadWait()
        self._closed = False

    def fileno(self) -> int:
        return self._sock.fileno()

    def read(self, max_bytes: int, timeout_ms: int) -> bytes:
        if self._closed:
            raise TransportClosedError(f"{self.name} is closed")
        try:
            data = self._sock.recv(max_bytes)
        except BlockingIOError:
            if not self._read_wait.wait(self._sock.fileno(), timeout_ms):
                return b""
            try:
                data = self._sock.recv(max_bytes)
            except BlockingIOError:
                return b""
            except OSError as error:
                raise TransportClosedError(f"{self.name}: {error.strerror}") from error
        except OSError as error:
            raise TransportClosedError(f"{self.name}: {error.strerror}") from error
        if not data:
            raise TransportClosedError(f"{self.name}: the other end closed the connection")
        return data

    def write(self, data: bytes) -> None:
        if self._closed:
            raise TransportClosedError(f"{self.name} is closed")
        try:
            self._sock.settimeout(_seconds(DEFAULT_WRITE_TIMEOUT_MS))
            self._sock.sendall(data)
        except OSError as error:
            raise TransportClosedError(f"{self.name}: write failed: {error}") from error
        finally:
            with contextlib.suppress(OSError):
                self._sock.setblocking(False)

    def write_some(self, data: bytes | memoryview) -> int:
        """Send what the socket takes now, without waiting; the number of bytes taken."""
        if self._closed:
            raise TransportClosedError(f"{self.name} is closed")
        try:
            return self._sock.send(data)
        except BlockingIOError:
            return 0
        except OSError as error:
            raise TransportClosedError(f"{self.name}: write failed: {error}") from error

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._read_wait.close()
        with contextlib.suppress(OSError):
            self._sock.close()

    def __enter__(self) -> SocketTransport:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


class TcpListener:
    """A listening TCP socket; :meth:`accept` hands out one :class:`SocketTransport` each."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0, *,
                 send_buffer_bytes: int | None = DEFAULT_ACCEPTED_SEND_BUFFER_BYTES) -> None:
        """Listen on ``host:port``; accepted connections get a kernel send buffer of
        ``send_buffer_bytes`` (None: the system's autotuned default)."""
        self._send_buffer_bytes = send_buffer_bytes
        try:
            infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM,
                                       flags=socket.AI_PASSIVE)
        except socket.gaierror as error:
            raise TransportError(f"cannot listen on {host}:{port}: {error}") from error
        family, kind, proto, _, address = infos[0]
        sock = socket.socket(family, kind, proto)
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind(address)
            sock.listen()
        except OSError as error:
            sock.close()
            raise TransportError(f"cannot listen on {host}:{port}: {error.strerror}") from error
        sock.setblocking(False)
        self._sock = sock
        bound = sock.getsockname()
        self.host: str = bound[0]
        self.port: int = bound[1]

    @property
    def address(self) -> str:
        """``host:port`` actually bound (port 0 resolved)."""
        return f"{self.host}:{self.port}"

    def fileno(self) -> int:
        return self._sock.fileno()

    def accept(self, timeout_ms: int = 0) -> SocketTransport | None:
        """The next connection, or ``None`` if none arrived within ``timeout_ms``."""
        if timeout_ms > 0:
            with selectors.DefaultSelector() as selector:
                selector.register(self._sock, selectors.EVENT_READ)
                if not selector.select(_seconds(timeout_ms)):
                    return None
        return self.accept_nowait()

    def accept_nowait(self) -> SocketTransport | None:
        """The next waiting connection, or ``None``; never blocks. Raises
        :class:`AcceptFailedError` when it cannot be taken now (out of descriptors: it stays
        queued until one is freed)."""
        try:
            sock, _ = self._sock.accept()
        except (BlockingIOError, InterruptedError):
            return None
        except OSError as error:
            raise AcceptFailedError(
                f"cannot accept on {self.address}: {error.strerror or error}",
                out_of_resources=error.errno in _OUT_OF_RESOURCES) from error
        if self._send_buffer_bytes is not None:
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, self._send_buffer_bytes)
        return SocketTransport(sock)

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self._sock.close()

    def __enter__(self) -> TcpListener:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


def parse_host_port(text: str) -> tuple[str, int]:
    """``"host:port"`` (or ``"[v6]:port"``) as a pair; :class:`TransportError` if malformed."""
    host, separator, port_text = text.rpartition(":")
    if not separator or not port_text.isdigit() or not 0 <= int(port_text) <= 65535:
        raise TransportError(f"{text!r} is not HOST:PORT (for example 127.0.0.1:4059)")
    return host.strip("[]") or "127.0.0.1", int(port_text)


def connect_tcp(address: str, *, timeout_ms: int = 5000) -> SocketTransport:
    """Connect to ``host:port``; :class:`TransportError` saying why not."""
    host, port = parse_host_port(address)
    try:
        sock = socket.create_connection((host, port), timeout=_seconds(timeout_ms))
    except OSError as error:
        reason = error.strerror or str(error)
        raise TransportError(f"cannot connect to {host}:{port}: {reason}") from error
    return SocketTransport(sock, name=f"tcp {host}:{port}")


def is_pty_slave_path(path: str) -> bool:
    """Whether ``path`` names a pseudo-terminal slave (e.g. ``/dev/pts/3``)."""
    try:
        mode = os.stat(path)
    except OSError:
        return False
    return stat.S_ISCHR(mode.st_mode) and os.major(mode.st_rdev) in _PTY_SLAVE_MAJORS


def open_port(port: str, *, baudrate: int = DEFAULT_BAUDRATE) -> ByteTransport:
    """A client transport for a device path or pyserial URL.

    A pty slave is opened directly in raw mode (no modem-line ioctls, which ptys reject);
    anything else goes through ``serial.serial_for_url``. Raises :class:`TransportError`
    naming the port when it cannot be opened.
    """
    if "://" not in port and is_pty_slave_path(port):
        try:
            fd = os.open(port, os.O_RDWR | os.O_NOCTTY | os.O_NONBLOCK)
        except OSError as error:
            raise TransportError(f"cannot open port {port!r}: {error.strerror}") from error
        tty.setraw(fd)
        termios.tcflush(fd, termios.TCIFLUSH)
        return FdTransport(fd, name=port)
    if "://" not in port and not os.path.exists(port):
        raise TransportError(f"cannot open port {port!r}: no such device")
    return SerialTransport.open(port, baudrate=baudrate)


def raise_descriptor_limit(wanted: int) -> int:
    """Raise this process's soft limit on open descriptors toward ``wanted`` (never past the
    hard limit; no root needed; children inherit it). Returns the soft limit now in force,
    which is below ``wanted`` when the hard limit is."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft == resource.RLIM_INFINITY or soft >= wanted:
        return soft
    target = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
    with contextlib.suppress(ValueError, OSError):
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]
