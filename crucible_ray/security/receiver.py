"""The receiving end of gVisor's runtime monitoring for one backend: a ``SOCK_SEQPACKET``
listener that every sandbox's Sentry connects to at start, and a thread that answers the
handshake, decodes trace points and applies the rules.

Every sandbox is announced (:meth:`Monitor.expect`) before it starts. A connection is
attributed by who made it, never by what it says: the peer's pid (``SO_PEERCRED``) is the
``runsc`` that the backend started, and its command line ends with the sandbox id. A connection
from anyone else is closed, which makes that sandbox's start fail (fail secure, like a missing
receiver: runsc is run with ``ignore_setup_error: false``). A point that claims another
container, or a stream that does not decode, is itself an event: the Sentry is untrusted.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import secrets
import selectors
import socket
import struct
import threading
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from crucible_ray.models import SecurityEvent, SecuritySummary, Severity
from crucible_ray.paths import state_dir
from crucible_ray.security import wire
from crucible_ray.security.rules import (
    INTEGRITY_RULES,
    RuleSet,
    SandboxFacts,
    default_rules,
    evaluate,
    trace_points,
)

log = logging.getLogger(__name__)
RUN_DIR = Path("/run/crucible/monitor")  # short: a socket path has at most 107 bytes
MAX_EVENTS = 20  # kept in full per sandbox; counts are kept for all
# Lossless under bursts: a full socket makes the Sentry retry (slowing the program that floods)
# rather than drop; a receiver that stops reading costs each point at most ~30 ms.
SINK = {"retries": 5, "backoff": "1ms", "backoff_max": "20ms"}
_UCRED = struct.Struct("3i")


@dataclass
class _Watch:
    facts: SandboxFacts
    counts: Counter[str] = field(default_factory=Counter)
    events: list[SecurityEvent] = field(default_factory=list)
    dropped: int = 0
    connected: bool = False
    invalid: bool = False
    ended: threading.Event = field(default_factory=threading.Event)

    def add(self, event: SecurityEvent) -> None:
        self.counts[event.rule] += 1
        if len(self.events) < MAX_EVENTS:
            self.events.append(event)


class Monitor:
    """One listener and one thread for all the sandboxes of a backend."""

    def __init__(self, rules: RuleSet | None = None) -> None:
        self.rules = rules or default_rules()
        directory = _socket_dir()
        name = f"{os.getpid()}-{secrets.token_hex(4)}"
        self.socket_path = directory / f"{name}.sock"
        self.config_path = directory / f"{name}.json"
        self._listener = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        self._listener.bind(str(self.socket_path))
        os.chmod(self.socket_path, 0o600)
        self._listener.listen(128)
        self._listener.setblocking(False)
        fd = os.open(self.config_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            json.dump(self.pod_init_config(), f)
        self._watches: dict[str, _Watch] = {}
        self._lock = threading.Lock()
        self._selector = selectors.DefaultSelector()
        self._selector.register(self._listener, selectors.EVENT_READ, None)
        self._closing = False
        self._thread = threading.Thread(target=self._loop, name="security-monitor", daemon=True)
        self._thread.start()

    def pod_init_config(self) -> dict:
        sink = {"name": "remote", "config": {"endpoint": str(self.socket_path), **SINK},
                "ignore_setup_error": False}  # fmt: skip
        return {"trace_session": {"name": "Default", "points": trace_points(self.rules),
                                  "sinks": [sink]}}  # fmt: skip

    @property
    def alive(self) -> bool:
        return self._thread.is_alive() and not self._closing

    def expect(self, sandbox_id: str, *, image: str, compiled: bool) -> None:
        with self._lock:
            self._watches[sandbox_id] = _Watch(SandboxFacts(sandbox_id, image, compiled))

    def session_started(self, sandbox_id: str) -> None:
        with self._lock:
            watch = self._watches.get(sandbox_id)
        if watch is not None:
            watch.facts.session = True

    def finish(self, sandbox_id: str, timeout_s: float = 1.0) -> SecuritySummary | None:
        """The summary of a sandbox whose program has ended (its stream ends with it: waits
        up to ``timeout_s`` for the rest). None if the sandbox was never announced."""
        with self._lock:
            watch = self._watches.get(sandbox_id)
        if watch is None:
            return None
        complete = watch.ended.wait(timeout_s) and watch.connected and not watch.invalid
        with self._lock:
            self._watches.pop(sandbox_id, None)
            return SecuritySummary(counts=dict(watch.counts), events=list(watch.events),
                                   dropped=watch.dropped, complete=complete)  # fmt: skip

    def forget(self, sandbox_id: str) -> None:
        with self._lock:
            self._watches.pop(sandbox_id, None)

    def close(self) -> None:
        self._closing = True
        self._thread.join(timeout=2)
        for key in list(self._selector.get_map().values()):
            with contextlib.suppress(OSError):
                key.fileobj.close()  # type: ignore[union-attr]
        self._selector.close()
        for path in (self.socket_path, self.config_path):
            path.unlink(missing_ok=True)

    # the thread ----------------------------------------------------------------------------

    def _loop(self) -> None:
        while not self._closing:
            for key, _ in self._selector.select(timeout=0.2):
                try:
                    if key.data is None:
                        self._accept()
                    else:
                        self._read(key.fileobj, key.data)  # type: ignore[arg-type]
                except Exception:  # one connection's fault must not stop the others
                    log.exception("security monitor: connection failed")
                    self._drop(key.fileobj, key.data)  # type: ignore[arg-type]

    def _accept(self) -> None:
        try:
            conn, _ = self._listener.accept()
        except BlockingIOError:
            return
        sandbox_id = _peer_sandbox(conn)
        with self._lock:
            watch = self._watches.get(sandbox_id or "")
        if watch is None or watch.connected:
            log.warning("security monitor: refused a connection (claimed %r)", sandbox_id)
            conn.close()
            return
        watch.connected = True
        conn.setblocking(False)
        self._selector.register(conn, selectors.EVENT_READ, [watch, False])

    def _read(self, conn: socket.socket, state: list) -> None:
        watch, shaken = state
        while True:
            try:
                data, _, flags, _ = conn.recvmsg(wire.MAX_MESSAGE)
            except BlockingIOError:
                return
            if not data:  # the sandbox is gone: its stream is complete
                self._drop(conn, state)
                return
            if flags & socket.MSG_TRUNC:
                raise wire.WireError("message over the size limit")
            if not shaken:
                if wire.handshake_version(data) < wire.VERSION:
                    raise wire.WireError("handshake: unsupported version")
                conn.send(wire.HANDSHAKE)
                state[1] = shaken = True
                continue
            try:
                point = wire.decode(data)
            except wire.WireError as exc:
                watch.invalid = True
                watch.add(_integrity_event("trace_stream_invalid", "high", str(exc)))
                self._drop(conn, state)
                return
            if point is not None:
                self._apply(watch, point)

    def _apply(self, watch: _Watch, point: wire.Point) -> None:
        watch.dropped = max(watch.dropped, point.dropped)
        claimed = point.context.get("container_id")
        if claimed is not None and claimed != watch.facts.sandbox_id:
            if "trace_identity_mismatch" not in watch.counts:
                detail = f"a point claimed container {claimed[:80]!r}"
                watch.add(_integrity_event("trace_identity_mismatch", "critical", detail))
            return
        for event in evaluate(self.rules, point, watch.facts):
            watch.add(event)

    def _drop(self, conn: socket.socket, state: list | None) -> None:
        with contextlib.suppress(KeyError, ValueError):
            self._selector.unregister(conn)
        conn.close()
        if state is not None:
            state[0].ended.set()


def _integrity_event(rule: str, severity: Severity, detail: str) -> SecurityEvent:
    """The Sentry itself misbehaving: what a sandbox that broke into gVisor's kernel could do."""
    return SecurityEvent(rule=rule, severity=severity, alert=INTEGRITY_RULES[rule],
                         detail=detail)  # fmt: skip


def _peer_sandbox(conn: socket.socket) -> str | None:
    """The sandbox id of the runsc that connected: the last word of its command line, if it is
    a process of this user."""
    try:
        pid, uid, _ = _UCRED.unpack(conn.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED,
                                                     _UCRED.size))  # fmt: skip
        if uid != os.getuid():
            return None
        words = Path(f"/proc/{pid}/cmdline").read_bytes().rstrip(b"\0").split(b"\0")
    except OSError:
        return None
    return words[-1].decode(errors="replace") if words else None


def _socket_dir() -> Path:
    for directory in (RUN_DIR, state_dir() / "monitor"):
        try:
            directory.mkdir(mode=0o700, parents=True, exist_ok=True)
            return directory
        except OSError:
            continue
    raise OSError("no directory for the security monitor's socket")
