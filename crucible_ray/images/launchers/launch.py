# crucible sandbox launcher for Python (runs inside the sandbox image as /opt/crucible/launch.py).
# Protocol (crucible_ray/sandbox/backend.py): "R" on stderr when ready; read "<length>\n" and the
# code from stdin, save it as /tmp/main.py, "G" on stderr, then run it as __main__ with the rest
# of stdin as its stdin. With "--run" first, it runs the /tmp/main.py already there instead (the
# judge driver's tests: crucible_ray/images/launchers/judge.py).
import os
import site  # started with -S: importing it runs nothing, only what is called here
import sys

# What programs expect of site's builtins (exit, quit, help, copyright...), without its sys.path
# scan, .pth files and sitecustomize: those cost a fifth of a fresh sandbox's CPU under gVisor.
site.setquit()
site.setcopyright()
site.sethelper()
_RUN = sys.argv[1:2] == ["--run"]
sys.path.extend(sys.argv[1 + _RUN :])  # the image's package directories (python-science)
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


if _RUN:
    with open(_PATH, "rb") as _file:
        _source = _file.read()
else:
    _source = _receive()


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


_main(_source)
