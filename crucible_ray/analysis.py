"""Advisory static analysis of Python submissions. Warnings are recorded for reviewers; they
never decide anything: every program runs in the same hardened sandbox whatever they say."""

from __future__ import annotations

import ast

DANGEROUS_MODULES = {
    "ctypes": "loads native code",
    "subprocess": "starts processes",
    "os": "operating system",
    "socket": "opens sockets",
    "multiprocessing": "starts processes",
    "pty": "opens terminals",
    "signal": "handles signals",
    "resource": "changes resource limits",
    "mmap": "maps memory",
    "importlib": "imports dynamically",
    "pickle": "unpickles objects",
    "marshal": "loads code",
    "shutil": "manipulates files",
    "urllib": "network access",
    "http": "network access",
}
DANGEROUS_CALLS = {"eval", "exec", "compile", "__import__", "open", "breakpoint", "getattr"}
INTROSPECTION = {"__subclasses__", "__globals__", "__builtins__", "__code__"}
MAX_WARNINGS = 20
# Parsing is CPU-bound and holds the GIL: a bound per source and per request keeps one large
# request from costing seconds of a replica's time (a batch may carry 32 MiB of code).
MAX_SOURCE_BYTES = 100_000
MAX_REQUEST_BYTES = 2 << 20
TOO_LARGE = "not analysed: source too large"
OVER_BUDGET = "not analysed: request too large"


def python_warnings(code: str) -> list[str]:
    """Sorted, de-duplicated advisory warnings for Python source (never raises)."""
    try:
        tree = ast.parse(code)
    except SyntaxError as exc:
        return [f"syntax error at line {exc.lineno}: {exc.msg}"]
    except (ValueError, RecursionError, MemoryError):
        return ["source could not be analysed"]
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module:
            names = [node.module]
        else:
            names = []
        for name in names:
            root = name.split(".")[0]
            if root in DANGEROUS_MODULES:
                found.add(f"imports {root} ({DANGEROUS_MODULES[root]})")
        if (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Name)
            and node.func.id in DANGEROUS_CALLS
        ):
            found.add(f"calls {node.func.id}()")
        if isinstance(node, ast.Attribute) and node.attr in INTROSPECTION:
            found.add(f"introspects {node.attr}")
    return sorted(found)[:MAX_WARNINGS]


def warnings_for(language: str, code: str) -> list[str]:
    if language != "python":
        return []
    return [TOO_LARGE] if len(code.encode()) > MAX_SOURCE_BYTES else python_warnings(code)


def warnings_for_all(
    sources: list[tuple[str, str]], budget_bytes: int = MAX_REQUEST_BYTES
) -> list[list[str]]:
    """Warnings for each (language, code) of one request, analysing at most ``budget_bytes``
    of Python in all; the rest are marked as not analysed (blocking: run it in a thread)."""
    found = []
    for language, code in sources:
        size = len(code.encode()) if language == "python" else 0
        if size > budget_bytes:
            found.append([OVER_BUDGET])
            continue
        found.append(warnings_for(language, code))
        budget_bytes -= min(size, MAX_SOURCE_BYTES)
    return found
