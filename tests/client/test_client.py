"""Client and AsyncClient against the real service: typed results, the error hierarchy,
retries on real 429s, evaluate_many, the `eval` command and the example."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import time
import uuid
from pathlib import Path

import httpx
import pytest

from crucible_ray import (
    AsyncClient,
    AuthenticationError,
    Client,
    DeadlineExceeded,
    EvalResult,
    EvalStatus,
    InvalidRequest,
    LanguageInfo,
    NotFound,
    ServiceUnavailable,
)
from tests.api.conftest import wait_until_idle
from tests.conftest import wait_for

pytestmark = pytest.mark.docker
ROOT = Path(__file__).resolve().parents[2]
SLEEPER = "import time\ntime.sleep({})\nprint('slept')"


class Recording(httpx.HTTPTransport):
    """A real HTTP transport that remembers every status it saw."""

    def __init__(self) -> None:
        super().__init__()
        self.statuses: list[int] = []

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        response = super().handle_request(request)
        self.statuses.append(response.status_code)
        return response


@pytest.fixture
def client_for(service, token_for):
    made: list[Client] = []

    def make(user: str | None = None, **options) -> Client:
        user = user or f"client-{time.monotonic_ns()}"
        client = Client(service, token_for(user), **options)
        made.append(client)
        return client

    yield make
    for client in made:
        client.close()


@pytest.fixture(autouse=True)
def idle_service(http):
    wait_until_idle(http)


def test_evaluate_returns_the_typed_result(client_for):
    client = client_for()
    result = client.evaluate("print(6 * 7)", metadata={"task": "answer"})
    assert isinstance(result, EvalResult)
    assert result.status is EvalStatus.SUCCEEDED and result.stdout == "42\n"
    assert result.runtime == "runsc" and result.metadata == {"task": "answer"}
    js = client.evaluate(
        "process.stdin.on('data', d => console.log(String(d).trim().toUpperCase()))",
        language="javascript",
        stdin="shout",
    )
    assert js.stdout == "SHOUT\n"
    assert client.evaluate("exit(3)").status is EvalStatus.FAILED


def test_languages_and_a_compiled_program_with_its_compile_stage(client_for):
    client = client_for()
    languages = {info.name: info for info in client.languages()}
    assert {"python", "go", "c", "cpp", "rust", "java"} <= set(languages)
    cpp = languages["cpp"]
    assert isinstance(cpp, LanguageInfo) and "-O2 -std=gnu++17" in cpp.compile.command
    assert cpp.run.memory_mb == 100 < cpp.compile.memory_mb and languages["python"].compile is None
    assert cpp.versions and cpp.versions["g++"]  # recorded in the image at build
    broken = client.evaluate("int main() { return nope; }", language="c")
    assert broken.status is EvalStatus.COMPILE_ERROR and "nope" in broken.compile.output
    fine = client.evaluate('#include <stdio.h>\nint main(void) { puts("ok"); }', language="c")
    assert fine.status is EvalStatus.SUCCEEDED and fine.stdout == "ok\n"
    assert fine.compile.status == "ok" and fine.compile.duration_ms > 0
    assert not languages["python-science"].default
    science = client.evaluate("import sympy\nprint(sympy.sqrt(8))", image="python-science")
    assert (science.status, science.stdout, science.image) == (
        EvalStatus.SUCCEEDED, "2*sqrt(2)\n", "python-science")  # fmt: skip


def test_submit_wait_cancel(client_for):
    client = client_for()
    eval_id = client.submit(SLEEPER.format(20), timeout_s=25)
    assert wait_for(lambda: client.result(eval_id).status is EvalStatus.RUNNING, 60)
    assert client.result(eval_id, wait=1).status is EvalStatus.RUNNING  # waited, not final
    assert client.cancel(eval_id).status is EvalStatus.CANCELLED
    done = client.evaluate("print('done')")
    assert client.cancel(done.id) == client.result(done.id)  # finished: returned unchanged
    quick = client.submit("print('quick')")
    assert client.result(quick, wait=True).stdout == "quick\n"


def test_errors_are_the_documented_hierarchy(client_for, service, token_for):
    client = client_for()
    with pytest.raises(InvalidRequest) as invalid:
        client.evaluate("print(1)", language="cobol")
    assert invalid.value.field == "language"  # refused before sending
    with pytest.raises(InvalidRequest) as too_big:
        client.evaluate("#" * 100_001)  # refused by the server: 413
    assert too_big.value.field == "code"
    with pytest.raises(NotFound):
        client.result("0" * 32)
    with pytest.raises(AuthenticationError):
        Client(service, token_for("x")[:-4] + "AAAA").evaluate("print(1)")
    with pytest.raises(AuthenticationError, match="CRUCIBLE_TOKEN"):
        Client(service, None).evaluate("print(1)")
    started = time.monotonic()
    with pytest.raises(DeadlineExceeded) as gone:
        Client("http://127.0.0.1:9", "t", deadline_s=2, backoff_base_s=0.1).health()
    assert isinstance(gone.value.last_error, ServiceUnavailable)
    assert time.monotonic() - started < 10


def test_retries_real_429s_until_admitted(client_for):
    # Another user fills the admission limit (8) with programs that sleep 3 s.
    blocker = client_for()
    for _ in range(8):
        blocker.submit(SLEEPER.format(3), timeout_s=10)
    transport = Recording()
    client = client_for(transport=transport, backoff_base_s=0.2)
    result = client.evaluate("print('admitted at last')")
    assert result.stdout == "admitted at last\n"
    assert transport.statuses[0] == 429 and transport.statuses[-1] == 200


def test_evaluate_many_streams_results_and_adapts_to_overload(client_for):
    transport = Recording()
    client = client_for(transport=transport)
    items = [{"code": f"import time\ntime.sleep(0.3)\nprint({i})", "metadata": {"i": i}}
             for i in range(30)]  # fmt: skip
    seen = []
    for result in client.evaluate_many(iter(items), concurrency=16, progress=False):
        assert result.status is EvalStatus.SUCCEEDED
        assert result.stdout == f"{result.metadata['i']}\n"
        seen.append(result.metadata["i"])
    assert sorted(seen) == list(range(30))  # each exactly once
    assert 429 in transport.statuses  # 16 wanted, 8 admitted: the window shrank and recovered


def test_async_client(service, token_for):
    async def main() -> list[EvalResult]:
        async with AsyncClient(service, token_for("async-user")) as client:
            first = await client.evaluate("print('async')")
            assert first.stdout == "async\n"
            items = [{"code": f"print({i})", "metadata": {"i": i}} for i in range(6)]
            return [r async for r in client.evaluate_many(items, concurrency=4, progress=False)]

    results = asyncio.run(main())
    assert sorted(r.metadata["i"] for r in results) == list(range(6))
    assert all(r.stdout == f"{r.metadata['i']}\n" for r in results)


def test_configuration_from_the_environment(service, token_for, monkeypatch):
    monkeypatch.setenv("CRUCIBLE_URL", service)
    monkeypatch.setenv("CRUCIBLE_TOKEN", token_for("env-user"))
    with Client() as client:
        assert client.evaluate("print('env')").stdout == "env\n"


def _cli(*args: str, env: dict[str, str], stdin: str | None = None):
    return subprocess.run(
        [str(Path(sys.executable).with_name("crucible-ray")), *args],
        env={**os.environ, **env},
        input=stdin,
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_eval_command(service, token_for, tmp_path):
    env = {"CRUCIBLE_URL": service, "CRUCIBLE_TOKEN": token_for("cli-user")}
    program = tmp_path / "hello.js"
    program.write_text("console.log('from js')")
    done = _cli("eval", str(program), "--json", env=env)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["stdout"] == "from js\n"
    failing = _cli("eval", "-", env=env, stdin="raise SystemExit(5)")
    assert failing.returncode == 0 and "failed" in failing.stdout  # it ran
    assert _cli("eval", "-", "-l", "cobol", env=env, stdin="x").returncode == 2
    assert _cli("eval", "-", env={**env, "CRUCIBLE_TOKEN": "bad"}, stdin="1").returncode == 4
    unreachable = {"CRUCIBLE_URL": "http://127.0.0.1:9", "CRUCIBLE_TOKEN": "t"}
    assert _cli("eval", "-", "--deadline", "2", env=unreachable, stdin="1").returncode == 3


def test_the_researcher_example(service, token_for):
    env = {"CRUCIBLE_URL": service, "CRUCIBLE_TOKEN": token_for("researcher")}
    done = subprocess.run(
        [sys.executable, str(ROOT / "examples" / "pass_rate.py")],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr
    assert "pass rate" in done.stdout
    summary = json.loads(done.stdout.strip().splitlines()[-1])
    assert summary["evaluated"] == 100 and summary["errors"] == 0
    assert 0 < summary["passed"] < 100  # the set mixes right and wrong candidates


def test_a_batch_item_the_policy_refuses_ends_alone(client_for):
    client = client_for()
    items = [{"code": "print('a')"}, {"code": "print('b')", "stdin": "x" * (1 << 20 | 1)},
             {"code": "print('c')"}]  # fmt: skip
    batch_id, ids = client.submit_batch(items)
    assert len(ids) == 3
    refused = client.result(ids[1])
    assert (refused.status, refused.error_code) == (EvalStatus.ERROR, "invalid_request")
    assert refused.error == "the request is invalid: stdin: stdin exceeds 1048576 bytes"
    assert [client.result(i, wait=True).stdout for i in (ids[0], ids[2])] == ["a\n", "c\n"]
    assert [r.id for r in client.batch_results(batch_id)] == ids


def test_judge_returns_the_typed_verdict(client_for):
    from crucible_ray.judge import JudgeResult, Verdict

    client = client_for()
    tests = [{"stdin": "2 3", "expected_stdout": "5"}, {"stdin": "1 1", "expected_stdout": "3"}]
    result = client.judge("a, b = map(int, input().split())\nprint(a + b)\n", tests,
                          stop_on_first_failure=False, scoring="fraction")  # fmt: skip
    assert isinstance(result, JudgeResult)
    assert (result.verdict, result.score) == (Verdict.WA, 0.5)
    assert [t.verdict for t in result.tests] == [Verdict.AC, Verdict.WA]
    assert client.judgement(result.id).tests == result.tests
    with pytest.raises(ValueError, match="expected_stdout"):  # checked before it is sent
        client.judge("print(1)", [{"stdin": ""}])


def test_judge_many_yields_each_result_with_its_metadata(client_for):
    from crucible_ray.judge import JudgeResult

    client = client_for()
    right, wrong = "def add(a, b):\n    return a + b\n", "def add(a, b):\n    return a - b\n"
    tests = [{"args": [2, 3], "expected": 5}]

    def submissions():  # a generator: read lazily
        for i in range(5):
            yield {"code": right if i % 2 == 0 else wrong, "tests": tests, "mode": "function",
                   "entry_point": "add", "metadata": {"i": i}}  # fmt: skip

    results = list(client.judge_many(submissions(), concurrency=2, progress=False))
    assert all(isinstance(r, JudgeResult) for r in results)
    by_index = {r.metadata["i"]: r.verdict for r in results}
    assert by_index == {0: "AC", 1: "WA", 2: "AC", 3: "WA", 4: "AC"}
    with pytest.raises(ValueError, match="entry_point"):  # an invalid one is refused
        list(client.judge_many([{"code": right, "tests": tests, "mode": "function"}]))


def test_judge_batch_judges_a_group_once_per_distinct_submission(client_for):
    from crucible_ray.judge import JudgeResult, Verdict

    client = client_for()
    tests = [{"stdin": "2 3", "expected_stdout": "5"}, {"stdin": "2 2", "expected_stdout": "4"}]
    stored = client.upload_testset(tests)
    assert stored.id.startswith("sha256:") and stored.tests == 2
    assert client.upload_testset(tests).id == stored.id  # stored once
    right = "a, b = map(int, input().split())\nprint(a + b)\n"
    wrong = "a, b = map(int, input().split())\nprint(a * b)\n"
    # 12 distinct submissions: more than the service admits at once (8), so the client's
    # chunks shrink on real 429s and wait for room.
    group = [right, wrong, right, {"code": right, "metadata": {"k": 1}}]
    group += [f"{right}# variant {n}\n" for n in range(10)]
    results = client.judge_batch(group, testset=stored.id, stop_on_first_failure=False,
                                 scoring="fraction", progress=False)  # fmt: skip
    assert len(results) == len(group) and all(isinstance(r, JudgeResult) for r in results)
    assert [r.score for r in results[:4]] == [1.0, 0.5, 1.0, 1.0]
    assert all(r.verdict == Verdict.AC for r in results[4:])
    assert results[0].id == results[2].id == results[3].id != results[1].id  # judged once
    assert (results[0].metadata, results[3].metadata) == (None, {"k": 1})  # each its own
    assert len({r.id for r in results}) == 12
    inline = client.judge_batch([wrong], tests, progress=False)  # tests stored first
    assert inline[0].verdict == Verdict.WA and inline[0].tests[0].verdict == Verdict.WA
    by_reference = client.judge(right, testset=stored.id)
    assert (by_reference.verdict, by_reference.passed) == (Verdict.AC, 2)


def test_async_client_judges_as_the_blocking_one(service, token_for):
    from crucible_ray.judge import Verdict

    tests = [{"stdin": "2 3", "expected_stdout": "5"}, {"stdin": "2 2", "expected_stdout": "4"}]
    right = "a, b = map(int, input().split())\nprint(a + b)\n"
    wrong = "a, b = map(int, input().split())\nprint(a * b)\n"

    async def main():
        async with AsyncClient(service, token_for(f"async-{uuid.uuid4().hex[:6]}")) as client:
            stored = await client.upload_testset(tests)
            one = await client.judge(wrong, testset=stored.id, stop_on_first_failure=False,
                                     scoring="fraction")  # fmt: skip
            again = await client.judgement(one.id)
            group = await client.judge_batch([right, wrong, right], testset=stored.id,
                                             progress=False)  # fmt: skip
            many = [r async for r in client.judge_many(
                [{"code": c, "tests": tests, "metadata": {"i": i}} for i, c in enumerate(
                    [right, wrong])], concurrency=2, progress=False)]  # fmt: skip
            return one, again, group, many

    one, again, group, many = asyncio.run(main())
    assert (one.verdict, one.score, again.tests) == (Verdict.WA, 0.5, one.tests)
    assert [r.verdict for r in group] == [Verdict.AC, Verdict.WA, Verdict.AC]
    assert group[0].id == group[2].id
    assert {r.metadata["i"]: r.verdict for r in many} == {0: Verdict.AC, 1: Verdict.WA}
