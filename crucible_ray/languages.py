"""Every supported language, in one place: its image contents, how it runs, what it needs.

A sandbox image holds a Debian ``minbase`` root plus the language's packages and a small
*launcher* (``crucible_ray/images/launchers``). Every launcher speaks the same protocol (see
:mod:`crucible_ray.sandbox.backend`), which is what lets sandboxes boot before the code arrives:

1. write ``R`` to stderr once booted and waiting;
2. read ``<length>`` and a newline, then the code, on stdin, and save it as ``/tmp/<source_file>``;
3. write ``G`` to stderr, then run it with the rest of stdin as its stdin.

A compiled language (one with a :class:`CompileStage`) has two stages in the same fresh sandbox:
the compile stage, with its own, larger limits and an executable ``/build`` directory, then the
run stage with exactly the policy's limits; the protocol between them is in
:mod:`crucible_ray.sandbox.stages`.

Per-language needs that differ from :class:`~crucible_ray.policy.SandboxPolicy` live here, in
``policy_overrides`` (documented per language below), and nowhere else.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

from crucible_ray.errors import UnsupportedLanguage


@dataclass(frozen=True)
class CompileStage:
    """How a compiled language builds the program, and the limits of that stage alone.

    The compile stage runs in the sandbox's ``/build`` (a tmpfs of ``build_mb`` that allows
    exec; the source is saved there), with ``memory_mb``, ``pids_limit`` and ``cpus`` instead of
    the policy's (never below them), under ``timeout_s``. The run stage then runs ``run`` in
    ``/build`` with exactly the policy's limits, after the host has lowered them.
    """

    command: str  # a /bin/sh command line
    run: tuple[str, ...]  # the built program's command
    memory_mb: int = 512
    pids_limit: int = 128
    cpus: float = 1.0
    timeout_s: float = 30.0
    build_mb: int = 256
    output_limit_bytes: int = 65536  # the compiler's output kept (the launcher's LOG_CAP)


@dataclass(frozen=True)
class LanguageSpec:
    """One sandbox image and how programs run in it. ``name`` names the image; ``language``
    the language it runs (the same, except for a variant such as ``python-science``)."""

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
    compile: CompileStage | None = None
    # Commands run in the image's root (chroot) at build time, before package managers are
    # stripped: caches that every sandbox would otherwise rebuild (precompiled headers...).
    build_steps: tuple[str, ...] = ()
    # Packages Debian's dependencies pull in that the image must not keep, removed right after
    # debootstrap (dpkg --purge --force-depends): what only builds of a dependency need.
    purge_packages: tuple[str, ...] = ()
    # How the saved source file runs on its own, as the judge driver starts each test's fresh
    # process (a compiled language runs ``compile.run``).
    judge_run: tuple[str, ...] = ()
    # The judge's solution host (function and assert tests): Python images only.
    judge_serve: tuple[str, ...] = ()
    # The judge's zygote (stdio tests): an interpreter that clones each test's process, saving
    # its execs and start (launch.py --zygote). Python images only; () spawns each test.
    judge_fork: tuple[str, ...] = ()
    language: str = ""  # empty: ``name`` (the language's default image)
    summary: str = ""  # what the image holds, for users (GET /api/languages)

    def __post_init__(self) -> None:
        if not self.language:
            object.__setattr__(self, "language", self.name)
        missing = tuple(p for p in JUDGE_DRIVER_PACKAGES if p not in self.packages)
        object.__setattr__(self, "packages", (*self.packages, *missing))

    @property
    def is_default(self) -> bool:
        """The image a request of this language gets when it names none."""
        return self.language == self.name

    @property
    def compile_time_s(self) -> float:
        """The longest the compile stage may take (0 for an interpreted language)."""
        return self.compile.timeout_s if self.compile else 0.0

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


# Every image also holds the judge driver (``launchers/judge.py``: one submission, many tests in
# one sandbox), which needs Python's full standard library (ctypes for prctl).
JUDGE_DRIVER = "judge.py"
JUDGE_DRIVER_PACKAGES = ("python3",)

# A runtime's heap gets half the sandbox's memory: the rest is the runtime's own code, stacks
# and buffers, and gVisor's sentry, which the same memory cgroup counts.
HEAP_SHARE = 0.5


COMPILED_LAUNCHER = "launch-compiled.sh"


def _compiled(*, source_file: str, compile: CompileStage, **fields: Any) -> LanguageSpec:
    """A compiled language: the shared two-stage launcher, given the commands as arguments."""
    command = ("/bin/sh", f"/opt/crucible/{COMPILED_LAUNCHER}", source_file, compile.command,
               *compile.run)  # fmt: skip
    return LanguageSpec(source_file=source_file, launcher=COMPILED_LAUNCHER, command=command,
                        compile=compile, **fields)  # fmt: skip


# C++ as contest judges compile it; the precompiled bits/stdc++.h is built with exactly these.
_CPP_FLAGS = "-O2 -std=gnu++17"

_JVM_FLAGS = ("-XX:+UseSerialGC -XX:TieredStopAtLevel=1 -XX:CICompilerCount=1 -XX:-UsePerfData"
              " -Xshare:auto -Xss1m")  # fmt: skip
# The main class: the public one, else the first top-level class; its name is saved for the run.
_JAVA_CLASS = (
    r"sed -n -e 's/^[[:space:]]*public[[:space:]]\{1,\}\(\(final\|abstract\|strictfp\)"
    r"[[:space:]]\{1,\}\)*\(class\|interface\|enum\|record\)[[:space:]]\{1,\}"
    r"\([A-Za-z_$][A-Za-z0-9_$]*\).*/\4/p' Main.java | head -n 1"
)
_JAVA_FIRST_CLASS = (
    r"sed -n -e 's/^\(\(final\|abstract\)[[:space:]]\{1,\}\)*class[[:space:]]\{1,\}"
    r"\([A-Za-z_$][A-Za-z0-9_$]*\).*/\3/p' Main.java | head -n 1"
)
_JAVA_COMPILE = (
    f"mkdir -p .cache && public=$({_JAVA_CLASS}) && first=$({_JAVA_FIRST_CLASS})"
    ' && main=${public:-$first} && main=${main:-Main} && { [ -z "$public" ] || [ "$public" = Main ]'
    ' || mv Main.java "$public.java"; }'
    f" && javac -J-Xmx384m {' '.join('-J' + f for f in _JVM_FLAGS.split())}"
    ' -encoding UTF-8 -d . *.java && printf %s "$main" > .main-class'
)
_JAVA_RUN = (
    f'exec java -Xmx"$CRUCIBLE_JAVA_HEAP_MB"m -XX:MaxMetaspaceSize=32m {_JVM_FLAGS}'
    ' -cp /build "$(cat /build/.main-class)"'
)

_BASE_ENV = {
    "PATH": "/usr/local/bin:/usr/bin:/bin",
    "HOME": "/tmp",
    "LANG": "C.UTF-8",
    "TMPDIR": "/tmp",
}

# The full standard library (python3, not python3-minimal): users expect shutil, json...
# The launcher runs the program in the already-started interpreter as __main__.
# -I: no PYTHON* variables, no user site, no cwd on sys.path; -S: no site scan (the image has
# no third-party packages; the launcher sets site's builtins); -B: no .pyc writes (the root is
# read-only; every standard-library module ships its .pyc).
_PYTHON = LanguageSpec(
    name="python",
    packages=("python3",),
    source_file="main.py",
    launcher="launch.py",
    command=("/usr/bin/python3", "-I", "-S", "-B", "/opt/crucible/launch.py"),
    env={**_BASE_ENV, "PYTHONDONTWRITEBYTECODE": "1"},
    judge_run=("/usr/bin/python3", "-I", "-S", "-B", "/opt/crucible/launch.py", "--run"),
    judge_fork=("/usr/bin/python3", "-I", "-S", "-B", "/opt/crucible/launch.py", "--zygote"),
    judge_serve=(
        "/usr/bin/python3",
        "-I",
        "-S",
        "-B",
        "/opt/crucible/judge.py",
        "--serve",
        "/tmp/main.py",
    ),
    summary="CPython 3 with its standard library only",
)

# What model-written Python for code-evaluation datasets imports beyond the standard library,
# from Debian (each package's own Python modules, no pip): numpy, scipy, pandas, sympy,
# networkx, matplotlib (the list; DS-1000 and BigCodeBench import all of them),
# scikit-learn and seaborn (DS-1000, BigCodeBench), sortedcontainers (competitive-programming
# solutions' SortedList: LiveCodeBench, APPS) and regex (BigCodeBench). Their dependencies
# come along (Pillow, dateutil, pytz, mpmath, joblib...). Nothing that needs the network or
# downloaded data (requests, nltk corpora) is worth its size in a sandbox without either.
SCIENCE_PACKAGES = (
    "python3-numpy", "python3-scipy", "python3-pandas", "python3-sympy", "python3-networkx",
    "python3-matplotlib", "python3-sklearn", "python3-seaborn", "python3-sortedcontainers",
    "python3-regex",
)  # fmt: skip
# Debian's scipy depends on pythran, a compiler of Python to C++ that only building scipy uses,
# and with it on g++, boost and the Python headers: 600 MB, and a C++ toolchain in a sandbox
# that needs none. Purged (scipy's modules are already compiled; tests/sandbox/test_science.py
# imports every subpackage).
_SCIENCE_BUILD_ONLY = (
    "python3-pythran", "libboost-dev", "libboost1.74-dev", "libxsimd-dev", "python3-all",
    "python3-all-dev", "python3-dev", "python3.11-dev", "libpython3-all-dev", "libpython3-dev",
    "libpython3.11-dev", "libopenblas-dev", "libopenblas-pthread-dev", "g++", "g++-12", "gcc",
    "gcc-12", "cpp", "cpp-12", "libstdc++-12-dev", "libgcc-12-dev", "libc6-dev", "libc-dev-bin",
    "linux-libc-dev", "libcrypt-dev", "libnsl-dev", "libtirpc-dev", "rpcsvc-proto",
    "libexpat1-dev", "zlib1g-dev", "binutils", "binutils-common", "binutils-x86-64-linux-gnu",
    "libbinutils", "libctf0", "libctf-nobfd0", "libgprofng0", "libjansson4", "libasan8",
    "libtsan2", "liblsan0", "libubsan1", "libitm1", "libcc1-0", "libisl23", "libmpc3",
    "libmpfr6", "perl", "libperl5.36", "perl-modules-5.36",
)  # fmt: skip
# Debian's Python packages live in dist-packages, which -S leaves off sys.path: the launcher
# appends the directories it is given. One thread per numerical library: the sandbox has one
# CPU, and a thread per host core would only spend the process limit. Matplotlib draws with
# Agg (no display) and keeps its font cache in the program's /tmp (HOME).
_PYTHON_SCIENCE = replace(
    _PYTHON,
    name="python-science",
    language="python",
    packages=("python3", *SCIENCE_PACKAGES),
    command=(*_PYTHON.command, "/usr/lib/python3/dist-packages"),
    judge_run=(*_PYTHON.judge_run, "/usr/lib/python3/dist-packages"),
    judge_fork=(*_PYTHON.judge_fork, "/usr/lib/python3/dist-packages"),
    judge_serve=(*_PYTHON.judge_serve, "/usr/lib/python3/dist-packages"),
    env={
        **_PYTHON.env,
        "MPLBACKEND": "Agg",
        "OPENBLAS_NUM_THREADS": "1",
        "OMP_NUM_THREADS": "1",
        "MKL_NUM_THREADS": "1",
    },
    summary="CPython 3 with numpy, scipy, pandas, sympy, networkx, matplotlib, scikit-learn,"
    " seaborn, sortedcontainers and regex",
    purge_packages=_SCIENCE_BUILD_ONLY,
    # Importing the stack takes memory that 100 MiB cannot hold: numpy, pandas, scipy, sklearn
    # and pyplot together reach a 232 MiB peak (RSS), and gVisor's sentry counts on top.
    policy_overrides={"memory_mb": 512},
)

IMAGES: dict[str, LanguageSpec] = {
    spec.name: spec
    for spec in (
        _PYTHON,
        _PYTHON_SCIENCE,
        # Node starts V8 before the code arrives; the program is loaded as the main module.
        LanguageSpec(
            name="javascript",
            summary="Node.js 18 (V8), CommonJS, no npm",
            packages=("nodejs",),
            source_file="main.js",
            launcher="launch.js",
            command=("/usr/bin/node", "/opt/crucible/launch.js"),
            judge_run=("/usr/bin/node", "/tmp/main.js"),
            env={**_BASE_ENV, "NODE_OPTIONS": ""},
            heap_env={"NODE_OPTIONS": "--max-old-space-size={heap_mb}"},
            heap_exhausted=("JavaScript heap out of memory",),
        ),
        # Go: the compiler and linker called directly against Debian's prebuilt standard
        # library (an importcfg made at image build), not `go build`, whose staleness checks
        # hash every dependency's sources on each build: a hello world compiles and links in
        # ~0.6 s instead of ~1.6 s under gVisor (benchmarks/results/languages.md). One file,
        # package main, the standard library only (no modules: no network anyway); no cgo.
        _compiled(
            name="go",
            summary="Go 1.19, one file of package main, the standard library",
            packages=("golang-go",),
            source_file="main.go",
            compile=CompileStage(
                command="mkdir -p .cache && GOMEMLIMIT=off /opt/crucible/go-compile -p main"
                " -complete -importcfg /opt/crucible/go.importcfg -o .cache/main.a main.go"
                " && GOMEMLIMIT=off /opt/crucible/go-link -s -w"
                " -importcfg /opt/crucible/go.importcfg -o main .cache/main.a",
                run=("./main",),
            ),
            build_steps=(
                'mkdir -p /opt/crucible && cd "$(go env GOTOOLDIR)"'
                ' && ln -s "$PWD/compile" /opt/crucible/go-compile'
                ' && ln -s "$PWD/link" /opt/crucible/go-link',
                "cd \"$(go env GOROOT)/pkg/linux_amd64\" && find . -name '*.a' | sort"
                ' | sed "s|^./\\(.*\\)\\.a$|packagefile \\1=$PWD/\\1.a|"'
                " > /opt/crucible/go.importcfg",
            ),
            env={
                **_BASE_ENV,
                "GOCACHE": "/build/.cache/go-build",  # .cache: removed after the compile
                "GOPATH": "/build/.cache/go",
                "GOFLAGS": "-mod=mod",
                "GOPROXY": "off",
                "GOTELEMETRY": "off",
                "CGO_ENABLED": "0",
            },
            # A soft limit: the collector works harder near it; the cgroup stays the hard one.
            heap_env={"GOMEMLIMIT": "{heap_mb}MiB"},
            heap_exhausted=("fatal error: runtime: out of memory",),
        ),
        # C and C++: gcc and g++ from Debian, -O2 like the contest judges (and unlike the
        # service peers), static libm linked for C. The C++ image ships bits/stdc++.h
        # precompiled for exactly these flags (checked at build: the build fails if g++ would
        # not use it), which turns a ~2.5 s compile of a typical contest solution into ~0.5 s.
        # Scratch files of the compiler go to /build/.cache (TMPDIR), not the program's /tmp.
        _compiled(
            name="c",
            summary="gcc 12, -O2 -std=gnu17, libm",
            packages=("gcc", "libc6-dev"),
            source_file="main.c",
            compile=CompileStage(
                command="mkdir -p .cache && TMPDIR=/build/.cache gcc -O2 -std=gnu17 -pipe"
                " -o main main.c -lm",
                run=("./main",),
            ),
            env=_BASE_ENV,
        ),
        _compiled(
            name="cpp",
            summary="g++ 12, -O2 -std=gnu++17, bits/stdc++.h precompiled",
            packages=("g++",),
            source_file="main.cpp",
            compile=CompileStage(
                command=f"mkdir -p .cache && TMPDIR=/build/.cache g++ {_CPP_FLAGS} -pipe"
                " -I/opt/crucible/pch -o main main.cpp",
                run=("./main",),
            ),
            build_steps=(
                'mkdir -p /opt/crucible/pch/bits && cp "$(find /usr/include -path'
                " '*/c++/*/bits/stdc++.h' | sort | tail -1)\" /opt/crucible/pch/bits/",
                f"g++ {_CPP_FLAGS} -x c++-header -o /opt/crucible/pch/bits/stdc++.h.gch"
                " /opt/crucible/pch/bits/stdc++.h",
                # Fails the build unless g++ takes the precompiled header ("!" in -H output).
                f"echo '#include <bits/stdc++.h>' | g++ {_CPP_FLAGS} -I/opt/crucible/pch -H"
                " -fsyntax-only -x c++ - 2>&1 | grep -q '^! /opt/crucible/pch/bits/stdc++.h.gch'",
            ),
            env=_BASE_ENV,
        ),
        # Rust: rustc from Debian (it links with gcc's `cc`), -O, edition 2021 (rustc's own
        # default is 2015). The standard library only: no cargo, no crates (no network anyway).
        _compiled(
            name="rust",
            summary="rustc 1.63, edition 2021, -O, the standard library",
            packages=("rustc", "libc6-dev"),  # rustc needs a libc-dev: debootstrap takes no virtual
            source_file="main.rs",
            compile=CompileStage(
                command="mkdir -p .cache && TMPDIR=/build/.cache rustc --edition 2021 -O"
                " -o main main.rs",
                run=("./main",),
            ),
            env=_BASE_ENV,
        ),
        # Java: OpenJDK 17 from Debian. The source may have any one public class (the file is
        # named after it, as javac requires; without one the first top-level class is the
        # main class). The JVM's heap is sized to the run's memory limit; serial GC, one JIT
        # compiler thread and no perf data file keep it inside 100 MiB and 50 threads.
        _compiled(
            name="java",
            summary="OpenJDK 17, one public class in any file name",
            packages=("openjdk-17-jdk-headless",),
            source_file="Main.java",
            compile=CompileStage(command=_JAVA_COMPILE, run=("/bin/sh", "-c", _JAVA_RUN)),
            env=_BASE_ENV,
            heap_env={"CRUCIBLE_JAVA_HEAP_MB": "{heap_mb}"},
            heap_exhausted=("java.lang.OutOfMemoryError",),
        ),
    )
}


# The languages, each by its default image (IMAGES also holds the variants).
LANGUAGES: dict[str, LanguageSpec] = {n: spec for n, spec in IMAGES.items() if spec.is_default}


def get_language(name: str) -> LanguageSpec:
    """The default image of the language ``name``."""
    try:
        return LANGUAGES[name]
    except KeyError:
        known = ", ".join(sorted(LANGUAGES))
        raise UnsupportedLanguage(
            f"unknown language {name!r}; supported: {known}", field="language"
        ) from None


def image_named(name: str) -> LanguageSpec:
    """The image ``name`` (a language's default or a variant), for commands that build and list
    images. Raises UnsupportedLanguage naming the known ones."""
    try:
        return IMAGES[name]
    except KeyError:
        raise UnsupportedLanguage(f"unknown image {name!r}; use one of {', '.join(IMAGES)}",
                                  field="image") from None  # fmt: skip


def get_image(language: str, image: str | None = None) -> LanguageSpec:
    """The image a request names (``None``: the language's default), checked against its
    language. Raises UnsupportedLanguage naming the field at fault."""
    spec = get_language(language)
    if image is None or image == spec.name:
        return spec
    variant = IMAGES.get(image)
    if variant is None or variant.language != language:
        known = ", ".join(sorted(n for n, s in IMAGES.items() if s.language == language))
        raise UnsupportedLanguage(
            f"unknown image {image!r} for {language}; use one of {known}", field="image"
        )
    return variant
