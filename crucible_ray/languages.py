"""Every supported language, in one place: its image contents, how it runs, what it needs.

A sandbox image holds a Debian ``minbase`` root plus the language's packages and a small
*launcher* (``crucible_ray/images/launchers``). Every launcher speaks the same protocol (see
:mod:`crucible_ray.sandbox.backend`), which is what lets sandboxes boot before the code arrives:

1. write ``R`` to stderr once booted and waiting;
2. read ``<length>`` and a newline, then the code, on stdin, and save it as ``/tmp/<source_file>``;
3. write ``G`` to stderr, then run it with the rest of stdin as its stdin.

Per-language needs that differ from :class:`~crucible_ray.policy.SandboxPolicy` live here, in
``policy_overrides`` (documented per language below), and nowhere else.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from crucible_ray.errors import UnsupportedLanguage


@dataclass(frozen=True)
class LanguageSpec:
    name: str
    packages: tuple[str, ...]  # Debian packages installed on top of minbase
    source_file: str  # name of the code file in the sandbox's /tmp
    launcher: str  # file in crucible_ray/images/launchers, installed in /opt/crucible
    command: tuple[str, ...]  # how the container starts the launcher
    env: dict[str, str] = field(default_factory=dict)
    policy_overrides: dict[str, Any] = field(default_factory=dict)
    # Variables that size the language runtime's heap to the sandbox's memory limit, so that
    # exhausting memory is a quick, clear failure of the runtime's own rather than a slow
    # crawl of garbage collections up to the wall clock. ``{heap_mb}`` is HEAP_SHARE of it.
    heap_env: dict[str, str] = field(default_factory=dict)
    # What the runtime prints on stderr when it stops at that heap limit: such an exit is
    # reported as out of memory (``oom_killed``), like a kill by the memory cgroup.
    heap_exhausted: tuple[str, ...] = ()

    @property
    def image_repository(self) -> str:
        return f"crucible-sandbox-{self.name}"

    def environment(self, memory_mb: int) -> dict[str, str]:
        """The sandbox's whole environment under a memory limit of ``memory_mb``."""
        heap_mb = str(max(16, int(memory_mb * HEAP_SHARE)))
        return {
            **self.env,
            **{k: v.replace("{heap_mb}", heap_mb) for k, v in self.heap_env.items()},
        }

    def ran_out_of_heap(self, exit_code: int | None, stderr: str) -> bool:
        return exit_code not in (None, 0) and any(m in stderr for m in self.heap_exhausted)


# A runtime's heap gets half the sandbox's memory: the rest is the runtime's own code, stacks
# and buffers, and gVisor's sentry, which the same memory cgroup counts.
HEAP_SHARE = 0.5


_BASE_ENV = {
    "PATH": "/usr/local/bin:/usr/bin:/bin",
    "HOME": "/tmp",
    "LANG": "C.UTF-8",
    "TMPDIR": "/tmp",
}

LANGUAGES: dict[str, LanguageSpec] = {
    spec.name: spec
    for spec in (
        # The full standard library (python3, not python3-minimal): users expect shutil, json...
        # The launcher runs the program in the already-started interpreter as __main__.
        # -I: no PYTHON* variables, no user site, no cwd on sys.path; -S: no site scan (the
        # image has no third-party packages; the launcher sets site's builtins); -B: no .pyc
        # writes (the root is read-only; every standard-library module ships its .pyc).
        LanguageSpec(
            name="python",
            packages=("python3",),
            source_file="main.py",
            launcher="launch.py",
            command=("/usr/bin/python3", "-I", "-S", "-B", "/opt/crucible/launch.py"),
            env={**_BASE_ENV, "PYTHONDONTWRITEBYTECODE": "1"},
        ),
        # Node starts V8 before the code arrives; the program is loaded as the main module.
        LanguageSpec(
            name="javascript",
            packages=("nodejs",),
            source_file="main.js",
            launcher="launch.js",
            command=("/usr/bin/node", "/opt/crucible/launch.js"),
            env={**_BASE_ENV, "NODE_OPTIONS": ""},
            heap_env={"NODE_OPTIONS": "--max-old-space-size={heap_mb}"},
            heap_exhausted=("JavaScript heap out of memory",),
        ),
        # Go compiles inside the sandbox, so it needs (documented, deliberate):
        # - memory 512 MiB: the compiler and linker of a small program peak well above 100 MiB;
        # - a 256 MiB /tmp that allows exec: GOCACHE and the built binary live there;
        # - 128 processes/threads: `go build` runs compile/link, each with runtime threads.
        # No cgo (no C toolchain in the image) and no module downloads (no network anyway).
        LanguageSpec(
            name="go",
            packages=("golang-go",),
            source_file="main.go",
            launcher="launch-go.sh",
            command=("/bin/sh", "/opt/crucible/launch-go.sh"),
            env={
                **_BASE_ENV,
                "GOCACHE": "/tmp/.gocache",
                "GOPATH": "/tmp/go",
                "GOFLAGS": "-mod=mod",
                "GOPROXY": "off",
                "GOTELEMETRY": "off",
                "CGO_ENABLED": "0",
            },
            # A soft limit: the collector works harder near it; the cgroup stays the hard one.
            heap_env={"GOMEMLIMIT": "{heap_mb}MiB"},
            heap_exhausted=("fatal error: runtime: out of memory",),
            policy_overrides={
                "memory_mb": 512,
                "tmp_size_mb": 256,
                "tmp_exec": True,
                "pids_limit": 128,
            },
        ),
    )
}


def get_language(name: str) -> LanguageSpec:
    try:
        return LANGUAGES[name]
    except KeyError:
        known = ", ".join(sorted(LANGUAGES))
        raise UnsupportedLanguage(
            f"unknown language {name!r}; supported: {known}", field="language"
        ) from None
