"""The runtime security rules (``rules.yaml``, data) and the pure functions that apply them:
a decoded trace point and what is known of its sandbox in, security events out."""

from __future__ import annotations

import fnmatch
import os
import posixpath
import struct
from dataclasses import dataclass, field
from functools import cache
from importlib import resources
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field

from crucible_ray.models import SecurityEvent
from crucible_ray.security.wire import Point

Kind = Literal["socket", "connect", "bind", "open", "execve", "syscall_raw", "chroot"]
SYSCALLS = {
    "ptrace": 101,
    "pivot_root": 155,
    "mount": 165,
    "umount2": 166,
    "unshare": 272,
    "setns": 308,
    "bpf": 321,
}  # fmt: skip  (x86-64 numbers: raw points are by number)
_CONTEXT = ["container_id", "group_id", "process_name", "time"]
# The trace points each kind of rule needs (entry points: the attempt, whatever its result).
_POINTS: dict[str, list[str]] = {
    "socket": ["syscall/socket/enter"],
    "connect": ["syscall/connect/enter"],
    "bind": ["syscall/bind/enter"],
    "open": ["syscall/open/enter", "syscall/openat/enter", "syscall/creat/enter"],
    "execve": ["sentry/execve"],
    "chroot": ["syscall/chroot/enter"],
}
_WRITE_FLAGS = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_TRUNC | os.O_APPEND


class Rule(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str = Field(pattern=r"^[a-z][a-z0-9_]{1,47}$")
    description: str
    point: Kind
    when: dict[str, Any] = Field(default_factory=dict)
    unless: list[dict[str, Any]] = Field(default_factory=list)
    severity: Literal["low", "medium", "high", "critical"]
    alert: str = "none"


class RuleSet(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    expected_binaries: dict[str, list[str]] = Field(default_factory=dict)
    rules: list[Rule]


@dataclass
class SandboxFacts:
    """What the receiver knows of one sandbox: a compiled language's program starts when the
    launcher (the sandbox's first process) replaces itself with it."""

    sandbox_id: str
    image: str
    compiled: bool
    running: bool = field(init=False)
    # A judging session: the judge driver starts each test's process itself, so whose exec is
    # whose is not known; the exec rules stay off, every other rule applies.
    session: bool = False

    def __post_init__(self) -> None:
        self.running = not self.compiled


# Raised by the receiver itself when the Sentry misbehaves (not data: no point matches them).
INTEGRITY_RULES = {"trace_stream_invalid": "container_escape_attempt",
                   "trace_identity_mismatch": "container_escape_attempt"}  # fmt: skip


def alert_of(rule_id: str) -> str:
    """The alert a rule feeds ("none" if none): the metric's label, for every event counted,
    not only the ones a summary keeps in full."""
    if rule_id in INTEGRITY_RULES:
        return INTEGRITY_RULES[rule_id]
    return next((r.alert for r in default_rules().rules if r.id == rule_id), "none")


@cache
def default_rules() -> RuleSet:
    return load(resources.files("crucible_ray.security").joinpath("rules.yaml").read_text())


def load(text: str) -> RuleSet:
    """Rules from YAML; a malformed file raises (pydantic's ValidationError, or ValueError)."""
    rules = RuleSet.model_validate(yaml.safe_load(text))
    if len({r.id for r in rules.rules}) != len(rules.rules):
        raise ValueError("rule ids must be unique")
    for rule in rules.rules:
        unknown = set(rule.when.get("syscall", {}).get("in", [])) - set(SYSCALLS)
        if rule.point == "syscall_raw" and unknown:
            raise ValueError(f"rule {rule.id}: unknown syscalls {sorted(unknown)}")
    return rules


def trace_points(rules: RuleSet) -> list[dict[str, Any]]:
    """The ``points`` of a pod-init trace session for ``rules``."""
    names = ["container/start"]
    for rule in rules.rules:
        if rule.point == "syscall_raw":
            names += [f"syscall/sysno/{SYSCALLS[s]}/enter" for s in rule.when["syscall"]["in"]]
        else:
            names += _POINTS[rule.point]
    points = []
    for name in dict.fromkeys(names):
        point: dict[str, Any] = {"name": name, "context_fields": list(_CONTEXT)}
        if name.startswith("syscall/open") or name == "syscall/creat/enter":
            point["context_fields"].append("cwd")
        if name == "sentry/execve":
            point["optional_fields"] = ["binary_info"]
        points.append(point)
    return points


def evaluate(rules: RuleSet, point: Point, sandbox: SandboxFacts) -> list[SecurityEvent]:
    """The events ``point`` raises; updates what is known of the sandbox (its stage)."""
    facts = _facts(point, sandbox, rules)
    if point.kind == "execve" and point.context.get("group_id") == 1 and not sandbox.running:
        sandbox.running = True  # the launcher exec'd the program: this exec is its start
        return []
    events = []
    for rule in rules.rules:
        if (
            rule.point == point.kind
            and _all(facts, rule.when)
            and not any(_all(facts, exception) for exception in rule.unless)
        ):
            events.append(SecurityEvent(
                rule=rule.id, severity=rule.severity,
                alert=None if rule.alert == "none" else rule.alert,
                detail=_detail(point.kind, facts), process=str(facts.get("process", ""))[:64],
            ))  # fmt: skip
    return events


def _all(facts: dict[str, Any], conditions: dict[str, Any]) -> bool:
    return all(_holds(facts.get(name), condition) for name, condition in conditions.items())


def _facts(point: Point, sandbox: SandboxFacts, rules: RuleSet) -> dict[str, Any]:
    f = point.fields
    running = sandbox.running and not sandbox.session
    facts: dict[str, Any] = {"stage": "run" if running else "setup",
                             "image": sandbox.image,
                             "entry": not point.is_exit,
                             "process": point.context.get("process_name", "")}  # fmt: skip
    if point.kind == "socket":
        facts |= {"domain": f.get("domain", 0), "type": f.get("type", 0)}
    elif point.kind in ("connect", "bind"):
        facts |= _address(f.get("address", b""))
    elif point.kind == "open":
        path = f.get("path", "")
        if not path.startswith("/"):  # relative to the directory fd, or to the cwd
            base = f.get("fd_path") if f.get("fd", -100) != -100 else None
            path = posixpath.normpath(posixpath.join(base or point.context.get("cwd", "/"), path))
        facts |= {"path": path, "writes": bool(f.get("flags", 0) & _WRITE_FLAGS)}
    elif point.kind == "execve":
        binary = f.get("binary_path", "")
        expected = rules.expected_binaries.get(sandbox.image, [])
        facts |= {"binary": binary, "binary_name": posixpath.basename(binary),
                  "expected": any(fnmatch.fnmatchcase(binary, g) for g in expected),
                  "argv": f.get("argv", [])[:8]}  # fmt: skip
    elif point.kind == "syscall_raw":
        names = {number: name for name, number in SYSCALLS.items()}
        facts |= {"syscall": names.get(f.get("sysno", -1), str(f.get("sysno"))),
                  "args": [f.get("arg1", 0), f.get("arg2", 0)]}  # fmt: skip
    elif point.kind == "chroot":
        facts |= {"path": f.get("path", "")}
    return facts


def _holds(value: Any, condition: Any) -> bool:
    if not isinstance(condition, dict):
        return value == condition
    checks = {
        "in": lambda options: value in options,
        "not_in": lambda options: value not in options,
        "prefix": lambda options: isinstance(value, str) and value.startswith(tuple(options)),
        "glob": lambda options: any(fnmatch.fnmatchcase(str(value), o) for o in options),
    }
    return all(checks[name](options) for name, options in condition.items())


def _address(raw: bytes) -> dict[str, Any]:
    if len(raw) < 2:
        return {"family": None, "address": ""}
    family = struct.unpack_from("<H", raw)[0]
    if family == 2 and len(raw) >= 8:
        port = struct.unpack_from(">H", raw, 2)[0]
        return {"family": 2, "address": f"{'.'.join(map(str, raw[4:8]))}:{port}"}
    if family == 10 and len(raw) >= 24:
        port = struct.unpack_from(">H", raw, 2)[0]
        return {"family": 10, "address": f"[{raw[8:24].hex()}]:{port}"}
    if family == 1:
        return {"family": 1, "address": raw[2:].split(b"\0", 1)[0].decode(errors="replace")}
    return {"family": family, "address": raw[2:18].hex()}


def _detail(kind: str, facts: dict[str, Any]) -> str:
    text = {
        "socket": f"socket(domain={facts.get('domain')}, type={facts.get('type')})",
        "connect": f"connect({facts.get('address')})",
        "bind": f"bind({facts.get('address')})",
        "open": f"open({facts.get('path')!r}, {'write' if facts.get('writes') else 'read'})",
        "execve": f"execve({facts.get('binary')!r}, argv={facts.get('argv')})",
        "syscall_raw": f"{facts.get('syscall')}({', '.join(map(hex, facts.get('args', [])))})",
        "chroot": f"chroot({facts.get('path')!r})",
    }[kind]
    return text[:300]
