"""A wheel install, outside the checkout, has everything an evaluation needs: its seccomp
profile is package data, loaded through the installed package (not the source tree)."""

from __future__ import annotations

import json
import subprocess
import sys
import sysconfig
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _run(*cmd: str | Path, cwd: Path, stdin: str | None = None) -> subprocess.CompletedProcess:
    # A minimal environment: no PYTHONPATH, nothing pointing back into the checkout.
    env = {"PATH": "/usr/local/bin:/usr/bin:/bin", "HOME": str(cwd)}
    return subprocess.run([str(c) for c in cmd], cwd=cwd, env=env, input=stdin,
                          capture_output=True, text=True, timeout=600)  # fmt: skip


@pytest.fixture(scope="module")
def wheel_venv(tmp_path_factory) -> Iterator[Path]:
    """A fresh venv (in /tmp) with the wheel built from this checkout installed in it. Its
    dependencies come from the test venv's site-packages through a .pth line (no network);
    only the wheel provides ``crucible_ray``: a .pth entry is a plain path, so the test venv's
    editable-install hook is not run there."""
    base = tmp_path_factory.mktemp("wheel")
    built = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
         "-w", str(base / "dist"), str(ROOT)],
        capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert built.returncode == 0, built.stderr
    (wheel,) = (base / "dist").glob("crucible_ray-*.whl")
    venv = base / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    installed = subprocess.run(
        [sys.executable, "-m", "pip", "--python", str(venv / "bin" / "python"), "install",
         "--no-deps", "-q", str(wheel)],
        capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert installed.returncode == 0, installed.stderr
    site = Path(_run(venv / "bin" / "python", "-c", "import sysconfig; print("
                     "sysconfig.get_paths()['purelib'])", cwd=base).stdout.strip())  # fmt: skip
    (site / "test-deps.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    yield venv


def test_the_wheel_ships_the_generated_profile_and_the_policy_loads_it(wheel_venv):
    probe = (
        "import json, crucible_ray, crucible_ray.policy as p\n"
        "print(json.dumps({'package': crucible_ray.__file__,\n"
        "  'profile': str(p.DEFAULT_SECCOMP_PROFILE),\n"
        "  'text': p.DEFAULT_SECCOMP_PROFILE.read_text(),\n"
        "  'runsc': json.loads(p.SandboxPolicy().seccomp_json())}))"
    )
    out = _run(wheel_venv / "bin" / "python", "-c", probe, cwd=wheel_venv)
    assert out.returncode == 0, out.stderr
    found = json.loads(out.stdout)
    assert Path(found["package"]).is_relative_to(wheel_venv)  # the wheel, not this checkout
    assert Path(found["profile"]).is_relative_to(wheel_venv)
    generated = subprocess.run([sys.executable, "-c", "import build_profile as b; "
                                "print(b.render(), end='')"], cwd=ROOT / "seccomp",
                               capture_output=True, text=True, check=True).stdout  # fmt: skip
    assert found["text"] == generated
    assert found["runsc"]["defaultAction"] == "SCMP_ACT_ERRNO"
    # The benchmark-only backend (it isolates nothing) is not installed: naming it is refused.
    probe = ("import importlib.util as u\nfrom crucible_ray.sandbox.registry import backend_for\n"
             "from crucible_ray.policy import SandboxPolicy\n"
             "assert u.find_spec('crucible_ray.sandbox.benchmark') is None\n"
             "backend_for(SandboxPolicy(backend='null-benchmark-only'))")  # fmt: skip
    out = _run(wheel_venv / "bin" / "python", "-c", probe, cwd=wheel_venv)
    assert out.returncode != 0 and "SandboxUnavailable" in out.stderr, out.stderr
    assert "backend is not installed here" in out.stderr


@pytest.mark.docker
def test_an_evaluation_runs_from_the_wheel_install(engine, wheel_venv):
    """End to end: the installed command runs a program in a real gVisor sandbox, which it
    refuses to do (fail secure) when the profile is not found."""
    out = _run(wheel_venv / "bin" / "crucible-ray", "run", "-", "--json", cwd=wheel_venv,
               stdin="print(6 * 7)")  # fmt: skip
    assert out.returncode == 0, out.stderr
    result = json.loads(out.stdout)
    assert (result["status"], result["runtime"], result["stdout"]) == ("succeeded", "runsc", "42\n")
