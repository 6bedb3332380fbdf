"""gVisor's runtime-monitoring wire format (the "remote" trace sink, protocol version 1, as in
runsc 2024-07-29), decoded with the standard library.

The Sentry connects to a ``SOCK_SEQPACKET`` Unix socket, sends a handshake (a protobuf message
whose field 1 is its version) and waits for ours. Then every trace point is one message: an
8-byte little-endian header (header size, message type, points dropped so far) and a protobuf
payload. The payload is decoded by a small generic reader driven by the field tables below
(written from gVisor's field numbers), not by generated code: the tables are the only schema
we need, and the Sentry on the other end is untrusted, so every message is bounded (size,
field count, nesting) and anything malformed is an error, never a guess.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import Any

HEADER = struct.Struct("<HHI")  # header size, message type, dropped count
VERSION = 1
HANDSHAKE = bytes([0x08, VERSION])  # our answer: {version: 1}
MAX_MESSAGE = 1 << 20
MAX_FIELDS = 2048
MAX_STRING = 4096  # longer strings are cut (argv, paths): evidence, not a copy of the input

# Message types, and what each message's fields mean: number -> (name, kind). Kinds: "u" an
# unsigned varint, "i" a signed one (int32/int64: two's complement in 64 bits), "s" a string,
# "b" bytes, "S" a repeated string, "m:<table>" a nested message.
# fmt: off
_CONTEXT = {1: ("time_ns", "i"), 2: ("thread_id", "i"), 4: ("group_id", "i"),
            6: ("container_id", "s"), 7: ("credentials", "m:credentials"), 8: ("cwd", "s"),
            9: ("process_name", "s")}
_POINT = {1: ("context", "m:context")}  # every point's field 1
_SYSCALL = {**_POINT, 2: ("exit", "m:exit"), 3: ("sysno", "u")}  # a named syscall point's 1-3
_FD = {**_SYSCALL, 4: ("fd", "i"), 5: ("fd_path", "s")}  # ... and its file descriptor
_TABLES: dict[str, dict[int, tuple[str, str]]] = {
    "context": _CONTEXT,
    "credentials": {1: ("real_uid", "u"), 2: ("effective_uid", "u"), 4: ("real_gid", "u"),
                    5: ("effective_gid", "u")},
    "exit": {1: ("result", "i"), 2: ("errno", "i")},
    "container_start": {**_POINT, 2: ("id", "s"), 3: ("cwd", "s"), 4: ("args", "S")},
    "clone": {**_POINT, 3: ("created_thread_id", "i"), 4: ("created_group_id", "i"),
              6: ("flags", "u")},
    "execve": {**_POINT, 2: ("binary_path", "s"), 3: ("argv", "S"), 5: ("binary_mode", "u"),
               6: ("binary_uid", "u")},
    "exit_notify_parent": {**_POINT, 2: ("exit_status", "i")},
    # raw syscalls by number: the number is field 4, then the argument registers
    "syscall_raw": {**_POINT, 2: ("exit", "m:exit"), 4: ("sysno", "u"), 5: ("arg1", "u"),
                    6: ("arg2", "u"), 7: ("arg3", "u")},
    "open": {**_FD, 6: ("path", "s"), 7: ("flags", "u")},
    "connect": {**_FD, 6: ("address", "b")},
    "bind": {**_FD, 6: ("address", "b")},
    "execve_syscall": {**_SYSCALL, 6: ("path", "s"), 7: ("argv", "S")},
    "socket": {**_SYSCALL, 4: ("domain", "i"), 5: ("type", "i"), 6: ("protocol", "i")},
    "chroot": {**_SYSCALL, 4: ("path", "s")},
}
MESSAGE_TYPES = {1: "container_start", 2: "clone", 3: "execve", 4: "exit_notify_parent",
                 6: "syscall_raw", 7: "open", 10: "connect", 11: "execve_syscall",
                 12: "socket", 21: "chroot", 24: "bind"}
# fmt: on


class WireError(ValueError):
    """A message that does not decode: the stream is not trusted further."""


@dataclass(frozen=True)
class Point:
    """One trace point: its kind (a key of the tables), its fields, and how many points the
    Sentry dropped on this connection before it (cumulative)."""

    kind: str
    fields: dict[str, Any]
    dropped: int

    @property
    def context(self) -> dict[str, Any]:
        return self.fields.get("context", {})

    @property
    def is_exit(self) -> bool:  # a syscall's exit point carries its result; the entry not
        return "exit" in self.fields


def handshake_version(message: bytes) -> int:
    fields = _decode(message, {1: ("version", "u")})
    return int(fields.get("version", 0))


def decode(message: bytes) -> Point | None:
    """One trace message; None for a message type we do not ask for (skipped unread)."""
    if len(message) < HEADER.size or len(message) > MAX_MESSAGE:
        raise WireError(f"message of {len(message)} bytes")
    header_size, message_type, dropped = HEADER.unpack_from(message)
    if header_size < HEADER.size or header_size > len(message):
        raise WireError(f"header size {header_size}")
    kind = MESSAGE_TYPES.get(message_type)
    if kind is None:
        return None
    return Point(kind, _decode(message[header_size:], _TABLES[kind]), dropped)


def _decode(data: bytes, table: dict[int, tuple[str, str]], depth: int = 0) -> dict[str, Any]:
    if depth > 3:
        raise WireError("nested too deep")
    out: dict[str, Any] = {}
    for number, value in _fields(data):
        if number not in table:
            continue  # a field we do not use (or a newer runsc's): skipped
        name, kind = table[number]
        if kind in ("u", "i"):
            if not isinstance(value, int):
                raise WireError(f"field {name}: not a number")
            out[name] = value - (1 << 64) if kind == "i" and value >= 1 << 63 else value
        elif not isinstance(value, bytes):
            raise WireError(f"field {name}: not length-delimited")
        elif kind.startswith("m:"):
            out[name] = _decode(value, _TABLES[kind[2:]], depth + 1)
        elif kind == "b":
            out[name] = value[:MAX_STRING]
        else:
            text = value[:MAX_STRING].decode("utf-8", errors="replace")
            if kind == "S":
                out.setdefault(name, []).append(text)
            else:
                out[name] = text
    return out


def _fields(data: bytes) -> list[tuple[int, int | bytes]]:
    """The (field number, value) pairs of one protobuf message: varints as ints, fixed-size
    values as ints, length-delimited ones as bytes."""
    pairs: list[tuple[int, int | bytes]] = []
    pos = 0
    while pos < len(data):
        if len(pairs) >= MAX_FIELDS:
            raise WireError("too many fields")
        key, pos = _varint(data, pos)
        number, wire_type = key >> 3, key & 7
        if number == 0:
            raise WireError("field number 0")
        if wire_type == 0:
            value, pos = _varint(data, pos)
        elif wire_type == 2:
            length, pos = _varint(data, pos)
            if pos + length > len(data):
                raise WireError("truncated field")
            value, pos = data[pos : pos + length], pos + length
        elif wire_type in (1, 5):
            size = 8 if wire_type == 1 else 4
            if pos + size > len(data):
                raise WireError("truncated field")
            value, pos = int.from_bytes(data[pos : pos + size], "little"), pos + size
        else:
            raise WireError(f"wire type {wire_type}")
        pairs.append((number, value))
    return pairs


def _varint(data: bytes, pos: int) -> tuple[int, int]:
    value = shift = 0
    while pos < len(data):
        byte = data[pos]
        pos += 1
        value |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return value & ((1 << 64) - 1), pos
        shift += 7
        if shift > 63:
            raise WireError("varint too long")
    raise WireError("truncated varint")
