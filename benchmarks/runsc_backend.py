"""CPU per evaluation: the runsc backend (EROFS root, goferless; directory root, with a gofer)
against the docker backend (the same harness: prepare, execute, destroy through the seam) and
``docker run --runtime crucible-runsc`` with the same hardening, in one run.

One evaluation = a fresh sandbox booted, ``print(sum(range(1000)))`` run, the sandbox torn
down. CPU is the whole machine's busy time from ``/proc/stat`` over the arm, minus the idle
machine's rate measured just before it (the machine is shared). Extra arms (sequential only):
``python3 -I -S -B``, ``--platform=ptrace``, and no per-sandbox cgroups (``--ignore-cgroups``,
limits NOT enforced: what our cgroups cost).

    .venv/bin/python benchmarks/runsc_backend.py [-n 200]
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.common import RESULTS, busy_seconds, idle_rate, machine, summary, write_results
from crucible_ray.images.build import image_tag
from crucible_ray.languages import LANGUAGES
from crucible_ray.policy import GVISOR_HOST_PIDS_HEADROOM, SandboxPolicy
from crucible_ray.sandbox.backend import Program, SandboxBackend
from crucible_ray.sandbox.docker import DockerBackend
from crucible_ray.sandbox.owners import owner_token
from crucible_ray.sandbox.runsc import RunscBackend, cgroups, runsc
from crucible_ray.sandbox.runsc.sweep import processes_of

CODE = b"print(sum(range(1000)))"
EXPECTED = "499500\n"
POLICY = SandboxPolicy(backend="runsc")
_TICK = os.sysconf("SC_CLK_TCK")
# All CPU of an arm, except Docker's daemons and shims, lands in this cpuacct cgroup: the
# benchmark joins it (its children inherit it), runsc sandboxes' cgroups are nested in it,
# and so are the containers of the docker-run arm (--cgroup-parent).
BENCH_CGROUP = "crucible-bench"
DOCKER_CGROUP = f"{BENCH_CGROUP}/docker"


def tree_seconds(pids: tuple[int, ...] = ()) -> float:
    """CPU of this process and every child it reaped (runsc run reaps its sentry and gofer),
    plus the cumulative CPU (own + reaped children) of ``pids`` (Docker's daemons, init)."""
    total = 0.0
    for who in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN):
        usage = resource.getrusage(who)
        total += usage.ru_utime + usage.ru_stime
    for pid in pids:
        with contextlib.suppress(OSError):
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            total += sum(int(v) for v in fields[11:15]) / _TICK  # utime stime cutime cstime
    return total


def daemons_seconds(pids: tuple[int, ...]) -> float:
    """Own CPU (utime + stime) of ``pids``: Docker's daemons, whoever they work for."""
    total = 0.0
    for pid in pids:
        with contextlib.suppress(OSError):
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            total += (int(fields[11]) + int(fields[12])) / _TICK
    return total


def join_bench_cgroup() -> None:
    path = Path("/sys/fs/cgroup/cpuacct", BENCH_CGROUP)
    path.mkdir(exist_ok=True)
    (path / "cgroup.procs").write_text(str(os.getpid()))


def daemon_pids() -> tuple[int, ...]:
    """dockerd, containerd and init (which reaps orphaned shims)."""
    found = [1]
    for proc in Path("/proc").iterdir():
        with contextlib.suppress(OSError):
            if proc.name.isdigit() and (proc / "comm").read_text().strip() in (
                "dockerd",
                "containerd",
            ):
                found.append(int(proc.name))
    return tuple(found)


def cpuacct_seconds(path: str) -> float:
    """Hierarchical CPU of a cpuacct cgroup: it keeps the CPU of children already removed."""
    try:
        return int(Path("/sys/fs/cgroup/cpuacct", path, "cpuacct.usage").read_text()) / 1e9
    except OSError:
        return 0.0


def measure(one: Callable[[], None], n: int, concurrency: int,
            pids: tuple[int, ...] = ()) -> dict[str, float]:  # fmt: skip
    background = idle_rate()
    latencies: list[float] = []
    errors: list[BaseException] = []
    lock = threading.Lock()

    def worker(count: int) -> None:
        for _ in range(count):
            t = time.monotonic()
            try:
                one()
            except BaseException as exc:  # reported below
                errors.append(exc)
                return
            with lock:
                latencies.append(time.monotonic() - t)

    threads = [
        threading.Thread(target=worker, args=(n // concurrency,)) for _ in range(concurrency)
    ]
    own0, cg0 = tree_seconds(), cpuacct_seconds(BENCH_CGROUP)
    daemons0 = daemons_seconds(tuple(p for p in pids if p != 1))
    busy0, tree0, t0 = busy_seconds(), tree_seconds(pids), time.monotonic()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    wall, busy = time.monotonic() - t0, busy_seconds() - busy0
    tree = tree_seconds(pids) - tree0
    own, in_cgroup = tree_seconds() - own0, cpuacct_seconds(BENCH_CGROUP) - cg0
    daemons = daemons_seconds(tuple(p for p in pids if p != 1)) - daemons0
    if errors:
        raise errors[0]
    result = summary(latencies, wall)
    result["cpu_ms_raw"] = round(busy / len(latencies) * 1000, 1)
    result["cpu_ms"] = round((busy - background * wall) / len(latencies) * 1000, 1)
    result["tree_cpu_ms"] = round(tree / len(latencies) * 1000, 1)
    result["own_tree_cpu_ms"] = round(own / len(latencies) * 1000, 1)
    result["bench_cgroup_cpu_ms"] = round(in_cgroup / len(latencies) * 1000, 1)
    result["daemons_cpu_ms"] = round(daemons / len(latencies) * 1000, 1)
    result["idle_cpu_s_per_s"] = round(background, 3)
    return result


def runsc_arm(backend: SandboxBackend, work: Path, command: tuple[str, ...] | None = None):
    spec = LANGUAGES["python"]
    if command:
        spec = dataclasses.replace(spec, command=command)
    image = backend.image(spec)
    owner = owner_token()
    work_dir = work / owner
    work_dir.mkdir(parents=True)

    def one() -> None:
        sandbox = backend.prepare(spec, POLICY, image, work_dir, owner)
        try:
            out = backend.execute(sandbox, Program(CODE, b"", 10))
        finally:
            backend.destroy(sandbox)
        assert out.stdout == EXPECTED, out

    return one, work_dir, owner


def docker_arm(seccomp_file: Path) -> Callable[[], None]:
    spec, p = LANGUAGES["python"], POLICY
    cmd = ["docker", "run", "--rm", "-i", "--runtime", "crucible-runsc", "--network", "none",
           f"--cgroup-parent=/{DOCKER_CGROUP}",
           f"--memory={p.memory_mb}m", f"--memory-swap={p.memory_mb}m", f"--cpus={p.cpus}",
           f"--pids-limit={p.pids_limit + GVISOR_HOST_PIDS_HEADROOM}", "--ulimit", "core=0",
           "--ulimit", "nofile=1024", "--ulimit", f"nproc={p.pids_limit}", "--read-only",
           "--cap-drop", "ALL", "--security-opt", "no-new-privileges",
           "--security-opt", f"seccomp={seccomp_file}",
           "--tmpfs", f"/tmp:rw,nosuid,nodev,noexec,size={p.tmp_size_mb}m,mode=1777",
           f"--shm-size={p.shm_size_mb}m", "--ipc", "private", "--log-driver", "none",
           "--user", p.user, "-w", "/tmp", "--hostname", "sandbox",
           *[a for k, v in spec.env.items() for a in ("-e", f"{k}={v}")],
           image_tag(spec), *spec.command]  # fmt: skip
    payload = b"%d\n" % len(CODE) + CODE

    def one() -> None:
        out = subprocess.run(cmd, input=payload, capture_output=True, timeout=60)
        assert out.stdout.decode() == EXPECTED and out.stderr[:2] == b"RG", out

    return one


def gofer_check(backend: RunscBackend, work: Path) -> list[str]:
    """The runsc processes of one live sandbox (argv[0]): shows whether a gofer runs."""
    spec = LANGUAGES["python"]
    owner = owner_token()
    work_dir = work / f"probe-{backend.rootfs}" / owner
    work_dir.mkdir(parents=True)
    sandbox = backend.prepare(spec, POLICY, backend.image(spec), work_dir, owner)
    try:
        return sorted(Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")[0].decode()
                      for pid, _ in processes_of(work_dir / "runsc"))  # fmt: skip
    finally:
        backend.destroy(sandbox)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("-n", type=int, default=200)
    parser.add_argument("--extra-n", type=int, default=100)
    parser.add_argument("--no-extras", action="store_true")
    parser.add_argument("--name", default="runsc-backend", help="results file name")
    args = parser.parse_args()
    cgroups.PARENT = f"{BENCH_CGROUP}/{cgroups.PARENT}"  # runsc sandboxes inside the bench cgroup
    join_bench_cgroup()
    work = Path(tempfile.mkdtemp(prefix="crucible-bench-"))
    seccomp_file = work / "seccomp.json"
    seccomp_file.write_text(POLICY.seccomp_json())
    erofs, directory = RunscBackend("erofs"), RunscBackend("directory")
    erofs.check(POLICY)
    results: dict[str, dict] = {"machine": machine(), "n": args.n, "arms": {}}
    results["processes"] = {"erofs": gofer_check(erofs, work),
                            "directory": gofer_check(directory, work)}  # fmt: skip

    def runsc_contender(backend: RunscBackend, name: str, command=None):
        one = runsc_arm(backend, work / name, command)[0]
        return one, ()

    docker_backend = DockerBackend()
    docker_backend.check(POLICY)
    arms = {
        "runsc-erofs": runsc_contender(erofs, "erofs"),
        "runsc-directory": runsc_contender(directory, "dir"),
        "docker-backend": (runsc_arm(docker_backend, work / "docker-backend")[0], daemon_pids()),
        "docker-run": (docker_arm(seccomp_file), daemon_pids()),
    }
    for concurrency in (1, 2):
        for name, (one, pids) in arms.items():
            one()  # warm the page cache and the image
            key = f"{name} c={concurrency}"
            results["arms"][key] = measure(one, args.n, concurrency, pids)
            print(key, results["arms"][key], flush=True)
    variants = (
        ("runsc-erofs -I -S -B", (), False,
         ("/usr/bin/python3", "-I", "-S", "-B", "/opt/crucible/launch.py")),
        ("runsc-erofs --platform=ptrace", ("--platform=ptrace",), False, None),
        ("runsc-erofs --ignore-cgroups", ("--ignore-cgroups",), True, None),
    )  # fmt: skip
    for name, flags, no_cgroups, command in () if args.no_extras else variants:
        saved_flags, saved_create = runsc.SANDBOX_FLAGS, cgroups.SandboxCgroup.create
        runsc.SANDBOX_FLAGS = (*saved_flags, *flags)
        if no_cgroups:  # what our cgroups cost: NO limits in this arm
            cgroups.SandboxCgroup.create = lambda self, resources: None  # type: ignore[method-assign]
        try:
            one, pids = runsc_contender(erofs, name.split()[-1].strip("-"), command)
            one()
            results["arms"][f"{name} c=1"] = measure(one, args.extra_n, 1, pids)
            print(name, results["arms"][f"{name} c=1"], flush=True)
        finally:
            runsc.SANDBOX_FLAGS, cgroups.SandboxCgroup.create = saved_flags, saved_create
    erofs.close()
    directory.close()
    shutil.rmtree(work, ignore_errors=True)
    for controller in Path("/sys/fs/cgroup").iterdir():  # empty ones only; ours stays joined
        for leftover in (controller / DOCKER_CGROUP, controller / cgroups.PARENT):
            with contextlib.suppress(OSError):
                leftover.rmdir()
    write_results(args.name, results, markdown(results))


def scoped_ms(key: str, arm: dict) -> float:
    """CPU that is provably this arm's (the bench cgroup): for runsc everything (the driver,
    runsc CLI, sentry, systrap stubs, gofer); for docker-run the CLI and its containers,
    WITHOUT dockerd, containerd, the shims and the runsc create/start/delete calls."""
    return arm["bench_cgroup_cpu_ms"]


def markdown(results: dict) -> str:
    arms = results["arms"]
    lines = [
        "# runsc backend: CPU per evaluation (fresh sandbox, `print(sum(range(1000)))`)",
        "",
        f"{results['machine']['date']}, {results['machine']['cpus']} cores, "
        f"{results['machine']['runsc']}. N={results['n']} per main arm (extras N as listed). "
        "CPU = whole-machine busy time (`/proc/stat`) per evaluation, idle rate subtracted "
        "(raw in brackets): the complete cost, daemons included, exact when the machine is "
        "otherwise idle (the idle rate measured before each arm is in the JSON). "
        "Scoped CPU = the cpuacct cgroup the benchmark runs in, with the sandboxes' cgroups "
        "nested in it: for runsc everything (driver, runsc CLI, sentry, "
        "systrap stubs, gofer); for docker-run the CLI and the containers only, WITHOUT "
        "dockerd, containerd, the shims and the runsc create/start/delete calls, so the ratio "
        "understates runsc's advantage. '+ Docker daemons' adds dockerd's and containerd's "
        "own CPU during the arm, which includes any other Docker user's (an upper bound).",
        "",
        "| arm | machine CPU ms/eval (raw) | vs docker backend | vs docker-run "
        "| scoped CPU ms/eval | vs docker-run (scoped) | + Docker daemons (any user) | evals/s "
        "| p50 / p95 ms | n |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for key, arm in arms.items():
        concurrency = key.rsplit("c=", 1)[1]
        base = arms.get(f"docker-run c={concurrency}")
        scoped = scoped_ms(key, arm)
        ratio = f"{scoped / scoped_ms('docker-run', base):.2f}" if base else ""
        daemons = f"{scoped + arm['daemons_cpu_ms']:.1f}" if arm["daemons_cpu_ms"] else ""
        machine_ratio = f"{arm['cpu_ms'] / base['cpu_ms']:.2f}" if base else ""
        ours = arms.get(f"docker-backend c={concurrency}")
        backend_ratio = f"{arm['cpu_ms'] / ours['cpu_ms']:.2f}" if ours else ""
        lines.append(
            f"| {key} | {arm['cpu_ms']} ({arm['cpu_ms_raw']}) | {backend_ratio} "
            f"| {machine_ratio} | {scoped} "
            f"| {ratio} | {daemons} | {arm['evals_per_s']} | {arm['p50_ms']} / {arm['p95_ms']} "
            f"| {arm['n']} |"
        )
    lines += ["", "runsc processes of one live sandbox (argv[0]):", ""]
    for fmt, names in results["processes"].items():
        lines.append(f"- {fmt} root: {', '.join(names)}")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    if sys.argv[1:] == ["--markdown"]:  # rewrite the report from the saved JSON
        saved = json.loads((RESULTS / "runsc-backend.json").read_text())
        (RESULTS / "runsc-backend.md").write_text(markdown(saved))
    else:
        main()
