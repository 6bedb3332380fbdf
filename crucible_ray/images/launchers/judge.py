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
import ctypes
import json
import math
import os
import resource
import selectors
import signal
import stat
import sys
import time

PR_SET_DUMPABLE, PR_SET_CHILD_SUBREAPER = 4, 36
LOG_CAP = 65536  # the compiler's output kept (as launch-compiled.sh)
WRITABLE = ("/tmp", "/dev/shm", "/build")  # everything a program can write to
_libc = ctypes.CDLL(None, use_errno=True)
# Not dumpable: no process of the program (same user) may read this one's memory through /proc.
# Subreaper: every orphan of a test is ours to kill and reap.
if _libc.prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) or _libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0):
    os._exit(3)
PLAN = json.loads(sys.argv[1])  # {"source": path, "compile": sh line | null, "run": argv, "cwd"}


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
    """SIGKILL every process but this one, and reap them all (they are ours: subreaper)."""
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


def exit_status(status):
    if os.WIFSIGNALED(status):
        return None, os.WTERMSIG(status)
    return os.WEXITSTATUS(status), None


# setsid -f forks the program's process and exits at once, never waiting for it: the program is
# then this subreaper's child, whose rusage is its own (started by this interpreter directly,
# its peak memory would count the interpreter's, which it borrows until exec), and no shell
# can reap it before we do. Its shell writes its pid, sets its CPU limit in its own process
# (gVisor arms RLIMIT_CPU in the process that sets it), and becomes the program.
_LAUNCH = 'echo $$ >&3 && exec 3>&- && cd "$1" && shift && {limits}exec "$@"'
ADOPTION_S = 2.0
_ENDED = {}  # children spawn() found ended while making sure they were ours


def spawn(argv, cwd, stdin_fd, stdout_fd, stderr_fd, cpu_s=None):
    """Start ``argv`` in ``cwd`` in a session of its own, under a CPU limit (SIGXCPU at it,
    SIGKILL a second later); its pid, or None when it could not be started."""
    limits = ""
    if cpu_s is not None:
        seconds = max(1, math.ceil(cpu_s))
        limits = f"ulimit -S -t {seconds} && ulimit -H -t {seconds + 1} && "
    pid_r, pid_w = os.pipe()
    starter = os.posix_spawn(
        "/usr/bin/setsid",
        ["setsid", "-f", "/bin/sh", "-c", _LAUNCH.format(limits=limits), "sh", cwd, *argv],
        os.environ,
        # every other descriptor of ours is close-on-exec (PEP 446)
        file_actions=[
            (os.POSIX_SPAWN_DUP2, stdin_fd, 0),
            (os.POSIX_SPAWN_DUP2, stdout_fd, 1),
            (os.POSIX_SPAWN_DUP2, stderr_fd, 2),
            (os.POSIX_SPAWN_DUP2, pid_w, 3),
        ],
        setsigdef=(signal.SIGPIPE, signal.SIGXFSZ),  # Python ignores them; programs do not
    )
    os.close(pid_w)
    with os.fdopen(pid_r, "rb") as pipe:
        line = pipe.read(32)
    os.waitpid(starter, 0)
    if not line.strip().isdigit():
        return None
    pid = int(line)
    # gVisor may let the starter be reaped a moment before its child is re-parented to us.
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
    resource.setrlimit(resource.RLIMIT_NPROC, (limit, limit))  # never to be raised again
    write_all(2, b"G")


class _NoUsage:
    ru_utime = ru_stime = 0.0
    ru_maxrss = 0


_NO_USAGE = _NoUsage()


class Capped:
    def __init__(self, limit):
        self.limit, self.data, self.total = limit, bytearray(), 0

    def add(self, chunk):
        self.total += len(chunk)
        room = self.limit - len(self.data)
        if room > 0:
            self.data += chunk[:room]


def run_test(test, stdin, wakeup):
    stdin_fd = os.memfd_create("stdin")
    write_all(stdin_fd, stdin)
    os.lseek(stdin_fd, 0, os.SEEK_SET)
    out_r, out_w = os.pipe()
    err_r, err_w = os.pipe()
    started = time.monotonic()
    pid = spawn(PLAN["run"], PLAN["cwd"], stdin_fd, out_w, err_w, test["cpu_s"])
    for fd in (stdin_fd, out_w, err_w):
        os.close(fd)
    streams = {out_r: Capped(test["stdout_bytes"]), err_r: Capped(test["stderr_bytes"])}
    selector = selectors.DefaultSelector()
    for fd in (*streams, wakeup):
        os.set_blocking(fd, False)
        selector.register(fd, selectors.EVENT_READ)
    deadline = started + test["wall_s"]
    status = usage = None
    wall_killed = output_exceeded = False
    if pid is None:  # the shell could not start it: exit 127, as a shell reports it
        status, usage = 127 << 8, _NO_USAGE
    while status is None:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            wall_killed = True
            break
        for key, _ in selector.select(remaining):
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
            if key.fd == out_r and stream.total > stream.limit:
                output_exceeded = True
        if output_exceeded:
            break
        reaped, raw, rusage = wait4(pid, os.WNOHANG)
        if reaped == pid:
            status, usage = raw, rusage
    wall_ms = (time.monotonic() - started) * 1000
    if status is None:  # still running: the wall clock or the output cap stops it
        os.kill(-1, signal.SIGKILL)
        _, status, usage = wait4(pid)
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
    report = {
        "nonce": test["nonce"],  # the host's, for this test: nothing else in here knows it
        "exit_code": code,
        "signal": sig,
        "cpu_ms": round((usage.ru_utime + usage.ru_stime) * 1000, 3),
        "wall_ms": round(wall_ms, 3),
        "max_rss_kb": usage.ru_maxrss,
        "wall_killed": wall_killed,
        "output_exceeded": output_exceeded or out.total > out.limit,
        "stdout_bytes": len(out.data),
        "stdout_total": out.total,
        "stderr_bytes": len(err.data),
        "stderr_total": err.total,
    }
    header = json.dumps(report, separators=(",", ":")).encode()
    write_all(1, b"T%08d" % len(header) + header + bytes(out.data) + bytes(err.data))


def main():
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
        for directory in WRITABLE:
            wipe(directory)
        restore(pristine)
        run_test(test, stdin, wakeup_r)


main()
