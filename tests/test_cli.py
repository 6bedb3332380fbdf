"""The command line, run as a real process against the real engine."""

import json
import os
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from crucible_ray import EvalRequest
from crucible_ray.images import background
from crucible_ray.languages import IMAGES
from crucible_ray.monitoring import scrape, value
from crucible_ray.topology import EXECUTOR_ROLE
from tests.conftest import wait_for

ROOT = Path(__file__).resolve().parents[1]
CLI = str(Path(sys.executable).with_name("crucible-ray"))


def cli(
    *args: str, stdin: str | None = None, env: dict | None = None
) -> subprocess.CompletedProcess:
    return subprocess.run([CLI, *args], input=stdin, capture_output=True, text=True, timeout=120,
                          env=env)  # fmt: skip


def test_help_everywhere():
    commands = (
        [], ["run"], ["doctor"], ["images"], ["images", "build"], ["sweep"], ["setup"],
        ["cluster"], ["cluster", "up"], ["cluster", "down"], ["cluster", "status"],
        ["cluster", "metrics"], ["eval"], ["batch"], ["token"], ["keygen"], ["up"], ["down"],
        ["serve"], ["judge"], ["images", "keygen"], ["images", "sign"], ["images", "verify"],
        ["images", "scan"], ["images", "sbom"], ["images", "export"], ["images", "import"],
    )  # fmt: skip
    with ThreadPoolExecutor(4) as pool:  # each is a process start: two cores, four at a time
        outs = list(pool.map(lambda args: cli(*args, "--help"), commands))
    for args, out in zip(commands, outs, strict=True):
        assert out.returncode == 0 and "Usage" in out.stdout, args


@pytest.mark.docker
def test_run_json_prints_the_eval_result(engine):
    out = cli("run", str(ROOT / "examples" / "hello.py"), "--json")
    assert out.returncode == 0, out.stderr
    result = json.loads(out.stdout)
    assert result["status"] == "succeeded" and result["runtime"] == "runsc"
    assert result["stdout"] == "hello from a gVisor sandbox: 45\n"


@pytest.mark.docker
def test_run_exits_zero_for_a_failing_program_and_reads_stdin_file(engine, tmp_path):
    stdin = tmp_path / "in.txt"
    stdin.write_text("7\n")
    out = cli("run", "-", "--stdin", str(stdin), "--timeout", "5", "--json",
              stdin="import sys\nsys.exit(int(input()))")  # fmt: skip
    assert out.returncode == 0
    assert json.loads(out.stdout)["exit_code"] == 7


@pytest.mark.docker
def test_run_takes_the_language_from_the_file_or_the_image(engine, tmp_path):
    source = tmp_path / "solution.cpp"
    source.write_text('#include <cstdio>\nint main() { std::puts("from c++"); }')
    out = cli("run", str(source), "--json")
    assert out.returncode == 0 and json.loads(out.stdout)["stdout"] == "from c++\n", out.stderr
    out = cli("run", "-", "--image", "python-science", "--json", "--timeout", "20",
              stdin="import numpy\nprint(numpy.eye(2).trace())")  # fmt: skip
    result = json.loads(out.stdout)
    assert (result["stdout"], result["language"], result["image"]) == (
        "2.0\n", "python", "python-science"), result  # fmt: skip
    out = cli("run", "-", "--language", "javascript", "--image", "python-science", stdin="1")
    assert out.returncode == 2 and "unknown image 'python-science' for javascript" in out.stderr


@pytest.mark.docker
def test_human_output_names_the_status(engine):
    out = cli("run", "-", "--language", "javascript", stdin="console.log('hi from js')")
    assert out.returncode == 0 and out.stdout.startswith("succeeded")
    assert "hi from js" in out.stdout


@pytest.mark.parametrize(
    "args,stdin,message",
    [(["run", "-", "--language", "cobol"], "x", "unknown language"),
     (["run", "-", "--timeout", "99"], "print(1)", "timeout_s"),
     (["run", "/nonexistent.py"], None, "cannot read"),
     (["run", "prog.rb"], None, "--language"),
     (["run", "-", "--runtime", "docker"], "print(1)", "unknown runtime"),
     (["eval", "-", "--language", "cobol"], "x", "language"),
     (["eval", "prog.rb"], None, "--language"),
     (["batch", "/nonexistent.jsonl", "-o", "/tmp/out.jsonl"], None, "no such input file"),
     (["judge", "-", "--tests", "/nonexistent.jsonl"], "x", "cannot read the tests"),
     (["judge", "-", "--tests", "/dev/null", "--local"], "x", "tests")],
)  # fmt: skip
def test_bad_input_exits_2_with_a_clear_message(args, stdin, message):
    out = cli(*args, stdin=stdin)
    assert out.returncode == 2, out
    assert message in out.stderr


@pytest.mark.docker
def test_doctor_json_reports_every_check_ok(engine):
    out = cli("doctor", "--json")
    checks = {c["name"]: c for c in json.loads(out.stdout)}
    assert out.returncode == 0, checks
    assert checks["sandbox probe"]["ok"] and "4.4.0" in checks["sandbox probe"]["detail"]
    assert {"sandbox backend", "container runtime", "seccomp profile", "image go"} <= set(checks)
    detail = checks["sandbox backend"]["detail"]
    # Both backends can run here; auto takes the fastest, runsc, and says why.
    assert detail.startswith("runsc (auto: the fastest backend, usable here): runsc "), detail


@pytest.mark.docker
def test_setup_builds_the_first_image_now_and_the_others_in_the_background(engine):
    log = background.build_log()
    before = log.read_text() if log.exists() else ""
    out = cli("setup", "--now", "python")
    assert out.returncode == 0, out.stderr
    later = [name for name in IMAGES if name != "python"]
    assert f"building {', '.join(later)} in the background" in out.stderr
    assert (
        "python: up to date" in out.stderr and "javascript" not in out.stderr.split("building")[0]
    )
    assert background.wait(120), "the background build did not end"
    written = log.read_text()[len(before) :]
    assert all(f"{name}: up to date" in written for name in later), written
    assert "python: up to date" not in written  # built in the foreground, not again
    refused = cli("setup", "--now", "cobol")
    assert refused.returncode == 2 and "unknown image 'cobol'" in refused.stderr


@pytest.mark.docker
def test_images_list_json(engine):
    out = cli("images", "list", "--json")
    images = json.loads(out.stdout)
    assert {i["language"] for i in images} == set(IMAGES)  # the languages' and the variants
    assert all(i["present"] and i["runsc_present"] for i in images)
    cpp = next(i for i in images if i["language"] == "cpp")
    # g++, and python3: the judge driver's interpreter, in every image.
    assert cpp["packages"] == ["g++", "python3"] and cpp["versions"]["g++"].startswith("4:12")
    assert cpp["versions"]["python3"].startswith("3.11")  # Debian's


def test_operator_tokens_carry_the_role(tmp_path):
    from crucible_ray.api.auth import Verifier, verify_principal

    env_secret = "cli-test-secret-Vb7Nq2Lx9Rk4Wm8Tz3Hc6Jd1Fp5"
    run = subprocess.run(
        [CLI, "token", "--user", "ops", "--operator"],
        env={"CRUCIBLE_JWT_SECRET": env_secret, "CRUCIBLE_STATE_DIR": str(tmp_path),
             "PATH": "/usr/bin:/bin"},
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert run.returncode == 0, run.stderr
    principal = verify_principal(Verifier(env_secret), run.stdout.strip())
    assert principal.user == "ops" and principal.roles == {"operator"}


@pytest.fixture
def cluster_env(cluster, tmp_path) -> dict[str, str]:
    """The CLI's environment for the session cluster (it reads $CRUCIBLE_STATE_DIR/cluster)."""
    (tmp_path / "cluster").symlink_to(cluster.state_dir)
    return {**os.environ, "CRUCIBLE_STATE_DIR": str(tmp_path)}


@pytest.mark.docker
def test_cluster_metrics_prints_series_repeated_across_nodes(cluster, cluster_env):
    """Evaluations on both executor nodes: many series share a name and differ by labels (the
    rows once could not be sorted: dicts compared)."""
    from crucible_ray.execution import DispatcherConfig, ExecutionClient, get_dispatcher
    from crucible_ray.execution.client import stop_dispatcher

    config = DispatcherConfig(slots_per_actor=1, min_actors=4, max_actors=4)  # 2 per node
    client = ExecutionClient(get_dispatcher(config, replace=True))
    try:
        codes = ["import time; time.sleep(1); print(1)", "import sys; sys.exit(3)"] * 4
        ids = [client.submit(EvalRequest(code=code)) for code in codes]
        statuses = sorted(client.result(i, timeout_s=120).status for i in ids)
    finally:
        stop_dispatcher()
    assert statuses == ["failed"] * 4 + ["succeeded"] * 4
    executor_nodes = [f"127.0.0.1:{n['metrics_port']}" for n in cluster.nodes
                      if n["role"] == EXECUTOR_ROLE and not n.get("stopped")]  # fmt: skip
    assert len(executor_nodes) == 2
    wait = "ray_crucible_sandbox_wait_seconds_count"
    assert wait_for(lambda: all(value(scrape(t), wait) >= 1 for t in executor_nodes), 120)

    def printed() -> list[dict]:
        out = cli("cluster", "metrics", "--json", env=cluster_env)
        assert out.returncode == 0, out.stderr
        return json.loads(out.stdout)

    evaluations = "ray_crucible_evaluations_total"
    assert wait_for(lambda: any(r["name"] == evaluations for r in printed()), 60)
    rows = printed()
    assert [r["name"] for r in rows] == sorted(r["name"] for r in rows)
    labels = {r["labels"]["status"]: r["value"] for r in rows if r["name"] == evaluations}
    assert labels["failed"] >= 4 and labels["succeeded"] >= 4
    bounds: dict[tuple, list[float]] = {}  # each histogram's bucket bounds, in printed order
    for r in rows:
        if r["name"] == "ray_crucible_sandbox_wait_seconds_bucket":
            rest = tuple(sorted((k, v) for k, v in r["labels"].items() if k != "le"))
            bounds.setdefault(rest, []).append(float(r["labels"]["le"]))
    assert bounds and all(len(b) > 2 and b == sorted(b) for b in bounds.values())
    assert all(b[-1] == float("inf") for b in bounds.values())
    table = cli("cluster", "metrics", "--contains", evaluations, env=cluster_env)
    assert table.returncode == 0, table.stderr
    assert "status=failed" in table.stdout and "status=succeeded" in table.stdout


def test_keygen_and_eddsa_tokens(tmp_path):
    """`keygen` writes a 0600 private key and prints its JWKS; `token` signs with the key, and
    the JWKS alone verifies the token. An existing key file is never overwritten."""
    from crucible_ray.api.auth import Verifier, public_key_set, verify_principal

    key = tmp_path / "jwt.key"
    made = cli("keygen", "--private-key", str(key))
    assert made.returncode == 0, made.stderr
    assert key.stat().st_mode & 0o777 == 0o600 and "PRIVATE KEY" in key.read_text()
    jwks = json.loads(made.stdout)
    env = {"CRUCIBLE_JWT_PRIVATE_KEY": key.read_text(), "CRUCIBLE_STATE_DIR": str(tmp_path),
           "PATH": "/usr/bin:/bin"}  # fmt: skip
    run = subprocess.run([CLI, "token", "--user", "ed"], env=env, capture_output=True,
                         text=True, timeout=60)  # fmt: skip
    assert run.returncode == 0, run.stderr
    verifier = Verifier(public_keys=public_key_set(jwks))
    assert verify_principal(verifier, run.stdout.strip()).user == "ed"
    assert not (tmp_path / "jwt-secret").exists()  # no HS256 secret made on the way
    again = cli("keygen", "--private-key", str(key))
    assert again.returncode == 2 and "cannot create" in again.stderr
    too_long = subprocess.run([CLI, "token", "--user", "ed", "--ttl", "90000"], env=env,
                              capture_output=True, text=True, timeout=60)  # fmt: skip
    assert too_long.returncode == 2 and "86400" in too_long.stderr


@pytest.mark.docker
def test_judge_locally_prints_each_tests_verdict(engine, tmp_path):
    tests = tmp_path / "tests.jsonl"
    tests.write_text('{"stdin": "1 2", "expected_stdout": "3"}\n'
                     '{"stdin": "2 2", "expected_stdout": "5", "id": "wrong"}\n'
                     '{"stdin": "5 5", "expected_stdout": "10"}\n')  # fmt: skip
    program = "a, b = map(int, input().split())\nprint(a + b)\n"
    out = cli("judge", "-", "--tests", str(tests), "--local", "--keep-going", "--json",
              "--scoring", "fraction", stdin=program)  # fmt: skip
    assert out.returncode == 0, out.stderr
    result = json.loads(out.stdout)
    assert [t["verdict"] for t in result["tests"]] == ["AC", "WA", "AC"]
    assert result["score"] == pytest.approx(2 / 3)
    wide = {**os.environ, "COLUMNS": "200"}  # the table unwrapped
    human = cli("judge", "-", "--tests", str(tests), "--local", stdin=program, env=wide)
    assert human.returncode == 0, human.stderr
    assert "wrong" in human.stdout and "WA: score 0" in human.stdout
    assert "expected '5', got '4'" in human.stdout


def test_judge_a_function_locally(engine, tmp_path):
    tests = tmp_path / "tests.json"
    tests.write_text('[{"args": [2, 3], "expected": 5}, {"args": [1, 1], "expected": 3}]')
    program = tmp_path / "add.py"
    program.write_text("def add(a, b):\n    return a + b\n")
    out = cli("judge", str(program), "--tests", str(tests), "--local", "--json", "--mode",
              "function", "--entry-point", "add", "--keep-going")  # fmt: skip
    assert out.returncode == 0, out.stderr
    assert [t["verdict"] for t in json.loads(out.stdout)["tests"]] == ["AC", "WA"]
    refused = cli("judge", str(program), "--tests", str(tests), "--local", "--mode", "function")
    assert refused.returncode == 2 and "entry_point" in refused.stderr
