# crucible sandbox launcher for Python (runs inside the sandbox image as /opt/crucible/launch.py).
# Protocol (see crucible_ray/languages.py): "R" on stderr when ready, wait for one line on
# stdin, "G" on stderr, then run /code/main.py as __main__ with the rest of stdin.
import os
import sys

os.write(2, b"R")
while True:  # byte by byte: whatever follows the go line is the program's stdin
    byte = os.read(0, 1)
    if not byte:
        os._exit(0)  # the host went away before sending code
    if byte == b"\n":
        break
os.write(2, b"G")

_PATH = "/code/main.py"


def _main():
    import types

    with open(_PATH, "rb") as f:
        source = f.read()
    module = types.ModuleType("__main__")
    module.__file__ = _PATH
    module.__builtins__ = __builtins__
    sys.modules["__main__"] = module
    sys.argv = [_PATH]
    sys.path[0] = "/code"
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


_main()
