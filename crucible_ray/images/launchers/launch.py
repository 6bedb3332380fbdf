# crucible sandbox launcher for Python (runs inside the sandbox image as /opt/crucible/launch.py).
# Protocol (crucible_ray/sandbox/backend.py): "R" on stderr when ready; read "<length>\n" and the
# code from stdin, save it as /tmp/main.py, "G" on stderr, then run it as __main__ with the rest
# of stdin as its stdin. With "--run" first, it runs the /tmp/main.py already there instead (the
# judge driver's tests: crucible_ray/images/launchers/judge.py). With "--zygote" first it is the
# judge driver's zygote: an interpreter that never holds a test's input or secrets and forks
# each test's fresh process, which runs /tmp/main.py as "--run" would (see _zygote below).
import os
import site  # started with -S: importing it runs nothing, only what is called here
import sys

# What programs expect of site's builtins (exit, quit, help, copyright...), without its sys.path
# scan, .pth files and sitecustomize: those cost a fifth of a fresh sandbox's CPU under gVisor.
site.setquit()
site.setcopyright()
site.sethelper()
_MODE = sys.argv[1] if sys.argv[1:2] in (["--run"], ["--zygote"]) else None
sys.path.extend(sys.argv[2 if _MODE else 1 :])  # the image's package directories (science)
_PATH = "/tmp/main.py"


def _read_exactly(size):
    chunks = []
    while size:
        chunk = os.read(0, min(size, 1 << 16))  # never past the code: the rest is the program's
        if not chunk:
            os._exit(0)  # the host went away before sending the code
        chunks.append(chunk)
        size -= len(chunk)
    return b"".join(chunks)


def _receive():
    os.write(2, b"R")
    header = b""
    while not header.endswith(b"\n"):
        header += _read_exactly(1)
        if len(header) > 16:
            os._exit(2)
    source = _read_exactly(int(header))
    fd = os.open(_PATH, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o444)
    view = memoryview(source)
    while view:
        view = view[os.write(fd, view) :]
    os.close(fd)
    os.write(2, b"G")
    return source


def _main(source):
    import types

    module = types.ModuleType("__main__")
    module.__file__ = _PATH
    module.__builtins__ = __builtins__
    sys.modules["__main__"] = module
    sys.argv = [_PATH]
    sys.path[0] = "/tmp"
    try:
        exec(compile(source, _PATH, "exec"), module.__dict__)
    except SystemExit:
        raise
    except BaseException as exc:  # report it as `python3 main.py` would, without our frames
        tb = exc.__traceback__
        while tb is not None and tb.tb_frame.f_code.co_filename != _PATH:
            tb = tb.tb_next
        sys.excepthook(type(exc), exc.with_traceback(tb), tb)
        sys.exit(130 if isinstance(exc, KeyboardInterrupt) else 1)


def _zygote():
    """The judge driver's zygote: on each request (fd 3, a Unix socket: the CPU limit in
    seconds, with the test's stdin, stdout, stderr and a pid pipe as descriptors) it forks the
    test's process, waits for it and relays its wait status and usage, as the kernel gave
    them, on fd 3 ("<pid> <status> <utime> <stime> <maxrss>\\n"). The test's process starts
    from this pristine interpreter (no test's input or secret was ever in it), writes its pid
    on the pid pipe, closes fd 3 before anything of the test runs, and runs /tmp/main.py as a
    fresh ``python3 main.py`` would. This process is not dumpable: a test's process cannot
    read or write its memory or open its descriptors."""
    import array
    import ctypes
    import socket

    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(4, 0, 0, 0, 0):  # PR_SET_DUMPABLE 0
        os._exit(3)
    libc.prctl(15, b"crucible-zygote", 0, 0, 0)  # PR_SET_NAME: its /proc/<pid>/comm
    channel = socket.socket(fileno=3)
    while True:
        fds = array.array("i")
        message, ancillary, _, _ = channel.recvmsg(64, socket.CMSG_LEN(4 * fds.itemsize))
        if not message:
            os._exit(0)  # the driver is gone
        for level, kind, data in ancillary:
            if level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS:
                fds.frombytes(data[: len(data) - len(data) % fds.itemsize])
        if len(fds) != 4:
            os._exit(2)
        child = os.fork()
        if child == 0:
            try:
                _start_test(libc, channel, fds, int(message))
            finally:
                os._exit(127)
        for fd in fds:
            os.close(fd)
        _, status, usage = os.wait4(child, 0)
        channel.sendall(b"%d %d %.6f %.6f %d\n" % (child, status, usage.ru_utime,
                                                   usage.ru_stime, usage.ru_maxrss))  # fmt: skip


def _start_test(libc, channel, fds, cpu_s):
    """In the test's process: its descriptors, session and limits as spawn()'s, then the
    program."""
    import resource
    import signal

    channel.close()
    libc.prctl(4, 1, 0, 0, 0)  # dumpable again: as any program, nothing to hide
    libc.prctl(15, b"python3", 0, 0, 0)  # not named as the zygote
    os.setsid()
    for target, fd in enumerate(fds[:3]):
        os.dup2(fd, target)
    os.write(fds[3], b"%d\n" % os.getpid())
    os.closerange(3, 1 << 16)
    resource.setrlimit(resource.RLIMIT_CPU, (cpu_s, cpu_s + 1))
    for sig in (signal.SIGPIPE, signal.SIGXFSZ):  # as a fresh program's
        signal.signal(sig, signal.SIG_DFL)
    os.chdir("/tmp")
    _as_main_process()


def _as_main_process():
    """Run /tmp/main.py, then end as the interpreter would: SystemExit's code, non-daemon
    threads joined, atexit handlers run, the standard streams flushed."""
    import atexit

    code = 0
    try:
        with open(_PATH, "rb") as file:
            _main(file.read())
    except SystemExit as exc:
        code = exc.code
    threading = sys.modules.get("threading")
    if threading is not None:
        threading._shutdown()
    atexit._run_exitfuncs()
    if code is None:
        code = 0
    elif not isinstance(code, int):
        print(code, file=sys.stderr)
        code = 1
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except BaseException:
            code = code or 120  # as Python reports a failed flush at exit
    os._exit(code & 0xFF)


if _MODE == "--zygote":
    _zygote()
elif _MODE == "--run":
    with open(_PATH, "rb") as _file:
        _main(_file.read())
else:
    _main(_receive())
