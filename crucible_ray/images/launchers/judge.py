# crucible judge driver (inside every image as /opt/crucible/judge.py): one submission, many
# tests, in one fresh sandbox. The host side and the protocol are in crucible_ray/judge/driver.py;
# in short:
#   "R" on stderr once ready. The host sends "<length>\n" and the code: saved as the source
#   file, "G" on stderr. A compiled language is compiled now and reported as launch-compiled.sh
#   does ("C" header and log on stderr); then the host lowers the sandbox to the run's limits
#   and sends "<process limit>\n", and the driver answers "G".
#   Then, per test, the host sends "<8-digit length><JSON header>" and the test's stdin; the
#   driver resets every writable directory, runs the program in a fresh process, and answers
#   on stdout "T<8-digit length><JSON report>", the program's stdout, then its stderr.
# No process of a test is alive when the next test starts, and each report echoes the test's
# nonce: a program can open this driver's pipes through /proc (gVisor does not hide another
# process's fds from the same user) and write into them, but it cannot read this process's
# memory, so what it writes is never taken for a report. Answers never come here: the host
# compares.
# Function and assert tests (Python): the program is this file with --serve, the solution
# host: it imports the submission and answers calls (fd 3 in, fd 4 out) with typed-JSON
# values (encode/decode below). A function test's one call comes from the driver and its answer
# goes to the host. An assert test's code runs in a checker process forked from this driver
# (never the submission's process): the submission's functions are proxies that call into
# the solution host, and only plain data comes back, so no object of the submission's is ever
# compared. The checker proves it ran the whole test by the test's token, which the submission
# cannot read (the checker is not dumpable either).
import json
import math
import os
import signal
import sys
import time

# Only what every process of this file needs is imported here: the solution host (--serve)
# starts once per test, and under gVisor each module costs (ctypes, selectors, traceback...
# ~140 ms of a test's CPU, measured). The rest is imported where it is used.

PR_SET_DUMPABLE, PR_SET_CHILD_SUBREAPER = 4, 36
LOG_CAP = 65536  # the compiler's output kept (as launch-compiled.sh)
WRITABLE = ("/tmp", "/dev/shm", "/build")  # everything a program can write to
FRAME_CAP = 64 << 20  # one call's or answer's bytes, at most (the host caps what it keeps)
MAX_DEPTH = 200  # nesting of a value
BIG_INT = 1 << 63  # larger integers travel as hex (str() of a huge int is refused, and slow)
PLAN = {}  # {"source": path, "compile": sh line | null, "run": argv, "cwd", "serve": argv}


class Unencodable(Exception):
    """A value that is not plain data (its type's name is the message)."""


def encode(value, depth=0):
    """``value`` as JSON that keeps Python's data types (tuples, sets, bytes, big integers,
    non-finite floats, non-string keys). Anything else (a class of the program's, a function)
    raises Unencodable: only data crosses, never an object with its own __eq__."""
    if depth > MAX_DEPTH:
        raise Unencodable("a value nested too deeply")
    kind = type(value)
    if value is None or kind is bool or kind is str:
        return value
    if kind is int:
        return value if -BIG_INT < value < BIG_INT else {"$int": format(value, "x")}
    if kind is float:
        return value if math.isfinite(value) else {"$float": repr(value)}
    if kind is list:
        return [encode(item, depth + 1) for item in value]
    if kind is tuple:
        return {"$tuple": [encode(item, depth + 1) for item in value]}
    if kind is set or kind is frozenset:
        return {"$" + kind.__name__: [encode(item, depth + 1) for item in value]}
    if kind is dict:
        if all(type(k) is str for k in value) and not (len(value) == 1 and _tagged(value)):
            return {k: encode(v, depth + 1) for k, v in value.items()}
        return {"$dict": [[encode(k, depth + 1), encode(v, depth + 1)] for k, v in value.items()]}
    if kind is bytes or kind is bytearray:
        import base64

        return {"$bytes": base64.b64encode(value).decode()}
    if kind is complex:
        return {"$complex": [encode(value.real), encode(value.imag)]}
    # Subclasses of the builtins and numbers of other libraries (numpy) as their plain value.
    for plain in (bool, int, float, str, list, tuple, dict):
        if isinstance(value, plain):
            return encode(plain(value), depth)
    import numbers

    if isinstance(value, numbers.Integral):
        return encode(int(value), depth)
    if isinstance(value, numbers.Real):
        return encode(float(value), depth)
    if callable(getattr(value, "tolist", None)):  # numpy arrays and scalars
        return encode(value.tolist(), depth + 1)
    raise Unencodable(kind.__name__)


def _tagged(value):
    return next(iter(value)).startswith("$")


_DECODERS = {
    "$int": lambda v: int(v, 16),
    "$float": float,
    "$tuple": lambda v: tuple(decode(i) for i in v),
    "$set": lambda v: {decode(i) for i in v},
    "$frozenset": lambda v: frozenset(decode(i) for i in v),
    "$dict": lambda v: {decode(k): decode(x) for k, x in v},
    "$bytes": lambda v: __import__("base64").b64decode(v, validate=True),
    "$complex": lambda v: complex(decode(v[0]), decode(v[1])),
}


def decode(value):
    """The value encode() made: plain builtins only. Raises ValueError (or TypeError) for
    anything encode() does not make."""
    kind = type(value)
    if value is None or kind in (bool, int, float, str):
        return value
    if kind is list:
        return [decode(item) for item in value]
    if kind is not dict:
        raise ValueError("not a value")
    if len(value) == 1 and _tagged(value):
        tag, inner = next(iter(value.items()))
        wanted = str if tag in ("$int", "$float", "$bytes") else list
        if tag not in _DECODERS or type(inner) is not wanted:
            raise ValueError(f"unknown or malformed {tag}")
        return _DECODERS[tag](inner)
    return {k: decode(v) for k, v in value.items()}


def frame(message):
    data = json.dumps(message, separators=(",", ":"), allow_nan=False).encode()
    return b"%08d" % len(data) + data


def read_frame(fd, cap=FRAME_CAP):
    """The next JSON message on ``fd``; None at its end. ValueError when it is not one."""
    size = _read_upto(fd, 8)
    if not size:
        return None
    if len(size) < 8 or not size.isdigit() or int(size) > cap:
        raise ValueError("not a frame")
    data = _read_upto(fd, int(size))
    if len(data) < int(size):
        raise ValueError("a cut frame")
    return json.loads(data)


def _read_upto(fd, size):
    chunks = []
    while size:
        chunk = os.read(fd, min(size, 1 << 20))
        if not chunk:
            break
        chunks.append(chunk)
        size -= len(chunk)
    return b"".join(chunks)


def read_exactly(size):
    chunks = []
    while size:
        chunk = os.read(0, min(size, 1 << 16))
        if not chunk:
            os._exit(0)  # the host is done (or gone)
        chunks.append(chunk)
        size -= len(chunk)
    return b"".join(chunks)


def read_line(limit=16):
    line = b""
    while not line.endswith(b"\n"):
        line += read_exactly(1)
        if len(line) > limit:
            os._exit(2)
    return line


def write_all(fd, data):
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


def wipe(directory):
    """Remove everything under ``directory`` (never the directory itself), whatever the modes
    the program left: everything here belongs to the sandbox's one user."""
    try:
        entries = list(os.scandir(directory))
    except OSError:
        return
    for entry in entries:
        if entry.is_dir(follow_symlinks=False):
            os.chmod(entry.path, 0o700)
            wipe(entry.path)
            os.rmdir(entry.path)
        else:
            os.unlink(entry.path)


def snapshot(directory):
    """Every file and directory under ``directory``: what each test starts from."""
    import stat

    tree = []
    for root, dirs, files in os.walk(directory):
        for name in dirs:
            tree.append((os.path.join(root, name), None, 0o555))
        for name in files:
            path = os.path.join(root, name)
            with open(path, "rb") as file:
                tree.append((path, file.read(), stat.S_IMODE(os.lstat(path).st_mode)))
    return tree


def restore(tree):
    for path, data, _ in tree:
        if data is None:
            os.mkdir(path, 0o755)
        else:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            write_all(fd, data)
            os.close(fd)
    for path, _, mode in reversed(tree):  # directories last: read-only once filled
        os.chmod(path, mode)


def kill_everything():
    """SIGKILL every process but this one (and the zygote, which runs nothing of a test's),
    and reap them all (they are ours: subreaper)."""
    if ZYGOTE.pid is not None and _kill_all_but(ZYGOTE.pid):
        os.kill(ZYGOTE.pid, signal.SIGCONT)  # a test's process may have stopped it
        return
    ZYGOTE.forget()  # it is killed below with everything else
    while True:
        try:
            os.kill(-1, signal.SIGKILL)
        except ProcessLookupError:
            return
        try:
            while os.waitpid(-1, os.WNOHANG)[0] > 0:
                pass
        except ChildProcessError:
            pass
        time.sleep(0.001)


def _kill_all_but(spared, patience_s=1.0):
    """Whether every process but this one and ``spared`` was killed and reaped in time."""
    deadline = time.monotonic() + patience_s
    me = os.getpid()
    while time.monotonic() < deadline:
        others = [int(n) for n in os.listdir("/proc") if n.isdigit()]
        others = [pid for pid in others if pid not in (me, spared)]
        if not others:
            return True
        for pid in others:
            try:  # noqa: SIM105 (contextlib is one more import for every test's process)
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        try:
            while True:
                reaped, _ = os.waitpid(-1, os.WNOHANG)
                if reaped == 0:
                    break
                if reaped == spared:
                    return False  # the zygote itself was killed meanwhile
        except ChildProcessError:
            pass
        time.sleep(0.001)
    return False


def exit_status(status):
    if os.WIFSIGNALED(status):
        return None, os.WTERMSIG(status)
    return os.WEXITSTATUS(status), None


# setsid -f forks the program's process and exits at once, never waiting for it: the program is
# then this subreaper's child, whose rusage is its own (started by this interpreter directly,
# its peak memory would count the interpreter's, which it borrows until exec), and no shell
# can reap it before we do. Its shell writes its pid, sets its CPU limit in its own process
# (gVisor arms RLIMIT_CPU in the process that sets it), and becomes the program.
_LAUNCH = 'echo $$ >&9 && exec 9>&- && cd "$1" && shift && {limits}exec "$@"'
ADOPTION_S = 2.0
_ENDED = {}  # children spawn() found ended while making sure they were ours


def spawn(argv, cwd, stdin_fd, stdout_fd, stderr_fd, cpu_s=None, extra=None, env=None):
    """Start ``argv`` in ``cwd`` in a session of its own, under a CPU limit (SIGXCPU at it,
    SIGKILL a second later), with ``extra`` ({its fd: ours}) besides 0-2 and ``env`` (default:
    ours); its pid, or None when it could not be started."""
    limits = ""
    if cpu_s is not None:
        seconds = max(1, math.ceil(cpu_s))
        limits = f"ulimit -S -t {seconds} && ulimit -H -t {seconds + 1} && "
    pid_r, pid_w = os.pipe()
    starter = os.posix_spawn(
        "/usr/bin/setsid",
        ["setsid", "-f", "/bin/sh", "-c", _LAUNCH.format(limits=limits), "sh", cwd, *argv],
        os.environ if env is None else env,
        # every other descriptor of ours is close-on-exec (PEP 446)
        file_actions=[
            (os.POSIX_SPAWN_DUP2, stdin_fd, 0),
            (os.POSIX_SPAWN_DUP2, stdout_fd, 1),
            (os.POSIX_SPAWN_DUP2, stderr_fd, 2),
            *((os.POSIX_SPAWN_DUP2, fd, target) for target, fd in (extra or {}).items()),
            (os.POSIX_SPAWN_DUP2, pid_w, 9),  # last: every source above is a higher fd
        ],
        setsigdef=(signal.SIGPIPE, signal.SIGXFSZ),  # Python ignores them; programs do not
    )
    os.close(pid_w)
    with os.fdopen(pid_r, "rb") as pipe:
        line = pipe.read(32)
    os.waitpid(starter, 0)
    if not line.strip().isdigit():
        return None
    return adopted(int(line))


def adopted(pid):
    """``pid`` once it is our child: its starter (setsid, or the zygote's intermediate) exited
    and it was re-parented to this subreaper, which gVisor may do a moment after the starter
    is reaped. Raises ChildProcessError when it never is."""
    deadline = time.monotonic() + ADOPTION_S
    while True:
        try:
            reaped, status, usage = os.wait4(pid, os.WNOHANG)
        except ChildProcessError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.001)
            continue
        if reaped == pid:  # it already ended: keep its status for the caller's wait
            _ENDED[pid] = (status, usage)
        return pid


def wait4(pid, options=0):
    """os.wait4, for a child spawn() started (which may have ended already)."""
    if pid in _ENDED:
        return (pid, *_ENDED.pop(pid))
    return os.wait4(pid, options)


class Usage:
    """A process's CPU and peak memory, as os.wait4's rusage names them."""

    def __init__(self, utime, stime, maxrss):
        self.ru_utime, self.ru_stime, self.ru_maxrss = utime, stime, maxrss


class Zygote:
    """Python stdio tests: a pre-started interpreter that never holds a test's input or
    secrets forks each test's fresh process (launch.py --zygote), waits for it and relays the
    kernel's exit status and usage of it on its channel (not dumpable, nothing else can write
    there). It saves two execs and the interpreter's start per test. A zygote that stops
    answering (a test's process may signal it) is killed, its child is then this subreaper's
    to wait for, and the next test gets a new zygote; spawn() is the fallback when none can
    start."""

    ANSWER_S = 2.0
    ORPHANED = object()  # the zygote is gone: the test's process is ours to wait for

    def __init__(self):
        self.pid = self.channel = None
        self.relayed, self.buffer = {}, b""

    def start_test(self, cpu_s, stdin_fd, stdout_fd, stderr_fd):
        """The test's process's pid, or None when no zygote could start it (a zygote that does
        not answer is replaced once)."""
        if not PLAN.get("fork"):
            return None
        for _ in range(2):
            if self.pid is None and not self._start():
                return None
            pid = self._fork(max(1, math.ceil(cpu_s)), [stdin_fd, stdout_fd, stderr_fd])
            if pid is not None:
                return pid
            self.stop()
            kill_everything()  # a test's process it forked too late must not run beside the next
        return None

    def _fork(self, seconds, fds):
        import select
        import socket

        pid_r, pid_w = os.pipe()
        try:
            socket.send_fds(self.channel, [b"%d" % seconds], [*fds, pid_w])
        except OSError:
            line = b""
        else:
            os.close(pid_w)
            pid_w = None
            ready, _, _ = select.select([pid_r], [], [], self.ANSWER_S)
            line = os.read(pid_r, 32) if ready else b""
        for fd in (pid_r, pid_w):
            if fd is not None:
                os.close(fd)
        return int(line) if line.strip().isdigit() else None

    def result(self, pid, block):
        """(wait status, usage) of ``pid``, which the zygote started: None while it runs,
        ORPHANED when the zygote is gone (then ``pid`` is this subreaper's child, or will be in
        a moment). With ``block``, a zygote that relays nothing in ANSWER_S is killed."""
        deadline = time.monotonic() + (self.ANSWER_S if block else 0)
        while pid not in self.relayed:
            if self.channel is None or not self._receive(deadline):
                self.stop()
                return self.ORPHANED
            if time.monotonic() >= deadline and pid not in self.relayed:
                if block:  # stopped, or too slow to trust: its child becomes ours
                    self.stop()
                    return self.ORPHANED
                return None
        return self.relayed.pop(pid)

    def _receive(self, deadline):
        """Read the relayed lines that arrive by ``deadline``; False when the zygote is gone."""
        import select

        ready, _, _ = select.select([self.channel], [], [], max(0, deadline - time.monotonic()))
        if not ready:
            return True
        try:
            data = self.channel.recv(4096)
        except OSError:
            data = b""
        if not data:
            return False
        self.buffer += data
        while b"\n" in self.buffer:
            line, self.buffer = self.buffer.split(b"\n", 1)
            pid, status, utime, stime, maxrss = line.split()
            self.relayed[int(pid)] = (int(status), Usage(float(utime), float(stime), int(maxrss)))
        return True

    def _start(self):
        import socket

        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        null = os.open("/dev/null", os.O_RDWR)
        argv = PLAN["fork"]
        try:
            self.pid = os.posix_spawn(
                argv[0],
                argv,
                os.environ,
                file_actions=[
                    (os.POSIX_SPAWN_DUP2, null, 0),
                    (os.POSIX_SPAWN_DUP2, null, 1),
                    (os.POSIX_SPAWN_DUP2, null, 2),
                    (os.POSIX_SPAWN_DUP2, theirs.fileno(), 3),
                ],
            )
        except OSError:
            ours.close()
            return False
        finally:
            os.close(null)
            theirs.close()
        self.channel = ours
        return True

    def stop(self):
        if self.pid is not None:
            try:
                os.kill(self.pid, signal.SIGKILL)
                os.waitpid(self.pid, 0)
            except (ProcessLookupError, ChildProcessError):
                pass
        self.forget()

    def forget(self):
        if self.channel is not None:
            self.channel.close()
        self.pid = self.channel = None
        self.relayed, self.buffer = {}, b""


ZYGOTE = Zygote()


def compile_stage(command):
    log = os.open("/build/.compile.log", os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    null = os.open("/dev/null", os.O_RDONLY)
    pid = spawn(["/bin/sh", "-c", command], "/build", null, log, log)
    os.close(log)
    os.close(null)
    code, sig = exit_status(wait4(pid)[1]) if pid else (127, None)
    kill_everything()
    status = min(255, code if sig is None else 128 + sig)
    with open("/build/.compile.log", "rb") as file:
        output = file.read(LOG_CAP + 1)
    report = b"C%03d%08d%d" % (status, min(len(output), LOG_CAP), len(output) > LOG_CAP)
    write_all(2, report + output[:LOG_CAP])
    os.unlink("/build/.compile.log")
    if os.path.isdir("/build/.cache"):
        wipe("/build/.cache")
        os.rmdir("/build/.cache")
    if status != 0:
        os._exit(0)
    processes = read_line()
    if not processes[:-1].isdigit():
        os._exit(2)
    limit = int(processes)
    import resource

    resource.setrlimit(resource.RLIMIT_NPROC, (limit, limit))  # never to be raised again
    write_all(2, b"G")


_NO_USAGE = Usage(0.0, 0.0, 0)


class Capped:
    def __init__(self, limit):
        self.limit, self.data, self.total = limit, bytearray(), 0

    def add(self, chunk):
        self.total += len(chunk)
        room = self.limit - len(self.data)
        if room > 0:
            self.data += chunk[:room]


def _memfd(data):
    fd = os.memfd_create("input")
    write_all(fd, data)
    os.lseek(fd, 0, os.SEEK_SET)
    return fd


def run_test(test, stdin, payload, wakeup):
    """Run one test and write its report. stdio: the program with ``stdin``. function: the
    solution host with the one call (``payload``) on fd 3; its answers on fd 4 are the
    result. assert: the solution host, called by a checker running the test's code; the
    checker's verdict is the result."""
    import selectors

    mode = test.get("mode", "stdio")
    stdin_fd = _memfd(stdin)
    out_r, out_w = os.pipe()
    err_r, err_w = os.pipe()
    result_r = checker = None
    extra = {}
    if mode == "function":
        result_r, answers_w = os.pipe()
        extra = {3: _memfd(payload), 4: answers_w}
    elif mode == "assert":
        calls_r, calls_w = os.pipe()
        answers_r, answers_w = os.pipe()
        result_r, result_w = os.pipe()
        checker = fork_checker(json.loads(payload), test, calls_w, answers_r, result_w)
        for fd in (calls_w, answers_r, result_w):
            os.close(fd)
        extra = {3: calls_r, 4: answers_w}
    env = argv = None
    if mode == "command":
        argv, env = command_files(json.loads(payload))
    else:
        argv = PLAN["run"] if mode == "stdio" else PLAN["serve"]
    pid = ZYGOTE.start_test(test["cpu_s"], stdin_fd, out_w, err_w) if mode == "stdio" else None
    relay = ZYGOTE.channel.fileno() if pid is not None else None  # its status comes there
    if pid is None and argv:
        pid = spawn(argv, PLAN["cwd"], stdin_fd, out_w, err_w, test["cpu_s"], extra, env)
    started = time.monotonic()  # its wall clock: from its start (a zygote replaced is not its)
    for fd in (stdin_fd, out_w, err_w, *extra.values()):
        os.close(fd)
    streams = {out_r: Capped(test["stdout_bytes"]), err_r: Capped(test["stderr_bytes"])}
    if result_r is not None:
        streams[result_r] = Capped(test["stdout_bytes"])
    capped = (out_r, result_r)  # past their cap the test stops: output limit exceeded
    selector = selectors.DefaultSelector()
    for fd in (*streams, wakeup):
        os.set_blocking(fd, False)
        selector.register(fd, selectors.EVENT_READ)
    if relay is not None:
        selector.register(relay, selectors.EVENT_READ)
    deadline = started + test["wall_s"]
    status = usage = checker_status = None
    wall_killed = output_exceeded = False
    if pid is None:  # the shell could not start it: exit 127, as a shell reports it
        status, usage = 127 << 8, _NO_USAGE
    while status is None or (checker is not None and checker_status is None):
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            wall_killed = True
            break
        for key, _ in selector.select(remaining):
            if key.fd == relay:
                continue  # read by ended() below
            try:
                chunk = os.read(key.fd, 1 << 16)
            except BlockingIOError:
                continue
            if key.fd == wakeup:
                continue
            if not chunk:
                selector.unregister(key.fd)
                continue
            stream = streams[key.fd]
            stream.add(chunk)
            if key.fd in capped and stream.total > stream.limit:
                output_exceeded = True
        if output_exceeded:
            break
        if status is None:
            status, usage = ended(pid, relay, block=False)
            if relay is not None and ZYGOTE.channel is None:  # the zygote died: pid is ours
                selector.unregister(relay)
                relay = None
        if checker is not None and checker_status is None:
            reaped, raw = os.waitpid(checker, os.WNOHANG)
            if reaped == checker:
                checker_status = raw
    wall_ms = (time.monotonic() - started) * 1000
    if status is None:  # still running: the wall clock or the output cap stops it
        os.kill(pid, signal.SIGKILL)  # (what it started dies in kill_everything below)
        status, usage = ended(pid, relay, block=True)
    if checker is not None and checker_status is None:
        os.kill(checker, signal.SIGKILL)
        checker_status = os.waitpid(checker, 0)[1]
    kill_everything()  # whatever it left behind dies with it
    for fd, stream in streams.items():  # what was written before the end
        while fd in selector.get_map():
            try:
                chunk = os.read(fd, 1 << 16)
            except BlockingIOError:
                break
            if not chunk:
                break
            stream.add(chunk)
    selector.close()
    for fd in streams:
        os.close(fd)
    code, sig = exit_status(status)
    out, err = streams[out_r], streams[err_r]
    result = streams.get(result_r) or Capped(0)
    checker_code, checker_sig = exit_status(checker_status) if checker else (None, None)
    over_cap = any(s.total > s.limit for fd, s in streams.items() if fd in capped)
    report = {
        "nonce": test["nonce"],  # the host's, for this test: nothing else in here knows it
        "exit_code": code,
        "signal": sig,
        "cpu_ms": round((usage.ru_utime + usage.ru_stime) * 1000, 3),
        "wall_ms": round(wall_ms, 3),
        "max_rss_kb": usage.ru_maxrss,
        "wall_killed": wall_killed,
        "output_exceeded": output_exceeded or over_cap,
        "stdout_bytes": len(out.data),
        "stdout_total": out.total,
        "stderr_bytes": len(err.data),
        "stderr_total": err.total,
        "result_bytes": len(result.data),
        "checker_exit": checker_code,
        "checker_signal": checker_sig,
    }
    header = json.dumps(report, separators=(",", ":")).encode()
    outputs = bytes(out.data) + bytes(err.data) + bytes(result.data)
    write_all(1, b"T%08d" % len(header) + header + outputs)


def ended(pid, relay, block):
    """(wait status, usage) of the test's process, or (None, None) while it runs: from the
    kernel, directly or relayed by the zygote that started it (``relay``: its channel)."""
    if relay is not None and ZYGOTE.channel is not None:
        answer = ZYGOTE.result(pid, block)
        if answer is None:
            return None, None
        if answer is not Zygote.ORPHANED:
            return answer
        pid = adopted(pid)  # it outlived its zygote: re-parented to this subreaper
    reaped, status, usage = wait4(pid, 0 if block else os.WNOHANG)
    return (status, usage) if reaped == pid else (None, None)


def command_files(spec):
    """A command test: its files written beside the program (the host checked their names),
    and the shell line to run, with $PROGRAM the command that runs the program; no argv when
    a file could not be written (the test then fails as a command that could not start)."""
    import shlex

    try:
        for name, text in spec["files"].items():
            path = os.path.join(PLAN["cwd"], name)
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
            write_all(fd, text.encode())
            os.close(fd)
    except OSError:
        return None, None
    return ["/bin/sh", "-c", spec["command"]], {**os.environ, "PROGRAM": shlex.join(PLAN["run"])}


# --- assert tests: the checker (a fork of this driver: not dumpable, never the submission's) ---


class SolutionEnded(BaseException):
    """The solution host ended during a call (not an Exception: test code cannot catch it)."""


class SubmissionRaised(Exception):
    """What the submission's function raised, when it is not one of Python's own exceptions."""


def fork_checker(payload, test, calls_w, answers_r, result_w):
    import contextlib
    import resource

    pid = os.fork()
    if pid:
        return pid
    try:
        signal.set_wakeup_fd(-1)
        signal.signal(signal.SIGCHLD, signal.SIG_DFL)
        keep = {calls_w, answers_r, result_w}
        for name in os.listdir("/proc/self/fd"):
            if int(name) not in keep:
                with contextlib.suppress(OSError):
                    os.close(int(name))
        for _ in range(3):  # 0, 1, 2: the test code's own output goes nowhere
            os.open("/dev/null", os.O_RDWR)
        seconds = max(1, math.ceil(test["wall_s"]))
        resource.setrlimit(resource.RLIMIT_CPU, (seconds, seconds + 1))
        sys.path.extend(PLAN.get("paths", ()))
        outcome = check(payload, test["token"], calls_w, answers_r)
    except BaseException as exc:  # the checker itself failed: no token, so never a pass
        outcome = {"error": {"type": "CheckerError", "message": repr(exc)[:500], "line": None}}
    try:
        write_all(result_w, json.dumps(outcome, separators=(",", ":")).encode())
    finally:
        os._exit(0)


def check(payload, token, calls_w, answers_r):
    """Run the test's code against the submission; the outcome to report."""
    import contextlib

    try:
        first = read_frame(answers_r)
    except ValueError:
        first = None
    if not isinstance(first, dict) or "import_error" in first:
        message = first.get("import_error") if isinstance(first, dict) else None
        return {"import_error": str(message)[:2000] if message else None}
    names = first.get("names")
    if not isinstance(names, list):
        return {"import_error": None}

    def proxy(name):
        def call(*args, **kwargs):
            request = {"name": name, "args": encode(list(args)), "kwargs": encode(kwargs)}
            write_all(calls_w, frame(request))
            try:
                answer = read_frame(answers_r)
                if answer is None:
                    raise SolutionEnded
                if "value" in answer:
                    return decode(answer["value"])
                raised = answer["raised"]
                kind, message = str(raised["type"]), str(raised["message"])
            except (ValueError, TypeError, KeyError, RecursionError):
                raise SolutionEnded from None  # not the solution host's answer
            builtin = getattr(__builtins__, kind, None)
            exc = SubmissionRaised(f"{kind}: {message}")
            if isinstance(builtin, type) and issubclass(builtin, Exception):
                with contextlib.suppress(Exception):  # some take more than a message
                    exc = builtin(message)
            exc.from_submission = True
            raise exc

        call.__name__ = name
        return call

    namespace = {"__name__": "__test__", "__builtins__": __builtins__}
    for name in names:
        if isinstance(name, str) and name.isidentifier():
            namespace[name] = proxy(name)
    if payload.get("candidate"):
        namespace["candidate"] = proxy(payload["candidate"])
    code = payload["code"]
    try:
        exec(compile(code, "<test>", "exec"), namespace)
    except SolutionEnded:
        return {"solution_ended": True}
    except BaseException as exc:
        line = _test_line(exc)
        where = {
            "type": type(exc).__name__,
            "message": str(exc)[:2000],
            "line": line,
            "source": _source_line(code, line),
        }
        if getattr(exc, "from_submission", False):
            return {"raised": where}
        return {"failed" if isinstance(exc, AssertionError) else "error": where}
    return {"passed": True, "token": token}


def _test_line(exc):
    line, tb = None, exc.__traceback__
    while tb is not None:
        if tb.tb_frame.f_code.co_filename == "<test>":
            line = tb.tb_lineno
        tb = tb.tb_next
    return line


def _source_line(code, line):
    lines = code.splitlines()
    return lines[line - 1].strip()[:500] if line and 0 < line <= len(lines) else None


# --- the solution host (judge.py --serve SOURCE [PATHS...]): the submission's process ---


def serve(source_path, paths):
    import site  # started with -S, as launch.py: site's builtins without its path scan

    site.setquit()
    site.setcopyright()
    site.sethelper()
    sys.path.extend(paths)
    sys.path[0] = os.path.dirname(source_path)
    sys.argv = [source_path]
    module = type(sys)("solution")  # not __main__: its `if __name__ == ...` stays off
    module.__file__ = source_path
    sys.modules["solution"] = module
    with open(source_path, "rb") as file:
        source = file.read()
    try:
        exec(compile(source, source_path, "exec"), module.__dict__)
    except BaseException as exc:
        __import__("traceback").print_exception(exc)
        write_all(4, frame({"import_error": f"{type(exc).__name__}: {exc}"[:2000]}))
        sys.stderr.flush()
        os._exit(1)
    names = [n for n, v in vars(module).items() if callable(v) and not n.startswith("__")]
    write_all(4, frame({"names": names}))
    while True:
        try:
            call = read_frame(3)
        except ValueError:
            os._exit(2)
        if call is None:
            break
        try:
            target = _resolve(module, call["name"])
            value = target(*decode(call["args"]), **decode(call["kwargs"]))
            answer = {"value": encode(value)}
        except Unencodable as exc:
            answer = {"raised": {"type": "Unencodable", "message": f"returned {exc}: not data"}}
        except BaseException as exc:
            __import__("traceback").print_exception(exc)
            answer = {"raised": {"type": type(exc).__name__, "message": str(exc)[:2000]}}
        write_all(4, frame(answer))
    sys.stdout.flush()


def _resolve(module, name):
    """``name`` in the submission: a function, or ``Class.method`` of a new instance (LeetCode's
    ``Solution``)."""
    owner, _, method = name.partition(".")
    target = getattr(module, owner)
    return getattr(target(), method) if method else target


def main():
    # Not dumpable: no process of the program (same user) may read this one's memory through
    # /proc. Subreaper: every orphan of a test is ours to kill and reap.
    import ctypes

    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) or libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0):
        os._exit(3)
    PLAN.update(json.loads(sys.argv[1]))
    os.write(2, b"R")
    source = read_exactly(int(read_line()))
    fd = os.open(PLAN["source"], os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o444)
    write_all(fd, source)
    os.close(fd)
    os.write(2, b"G")
    if PLAN["compile"] is not None:
        compile_stage(PLAN["compile"])
        pristine = snapshot("/build")
    else:
        pristine = [(PLAN["source"], source, 0o444)]
    wakeup_r, wakeup_w = os.pipe()
    os.set_blocking(wakeup_w, False)
    signal.set_wakeup_fd(wakeup_w)
    signal.signal(signal.SIGCHLD, lambda *_: None)  # wakes the select when a test ends
    while True:
        size = read_exactly(8)
        if not size.isdigit():
            os._exit(2)
        test = json.loads(read_exactly(int(size)))
        stdin = read_exactly(test["stdin_bytes"]) if test["stdin_bytes"] else b""
        payload = read_exactly(test["payload_bytes"]) if test.get("payload_bytes") else b""
        for directory in WRITABLE:
            wipe(directory)
        restore(pristine)
        run_test(test, stdin, payload, wakeup_r)


if __name__ == "__main__":  # the host imports this file for encode() and decode()
    if sys.argv[1:2] == ["--serve"]:
        serve(sys.argv[2], sys.argv[3:])
    else:
        main()
