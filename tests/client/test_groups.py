"""The judge_batch plan alone (pure: no service): lazy reading within the window, dedupe of
identical submissions in flight and after, refusals that shrink and regrow requests, results
never lost between network calls, and the IE results of a deadline."""

from __future__ import annotations

from typing import Any

import pytest

from crucible_ray.client.groups import GroupStream, group_stream, in_order
from crucible_ray.errors import DeadlineExceeded, InvalidRequest, Overloaded
from crucible_ray.judge.models import JudgeResult

SET_ID = "sha256:" + "0" * 64


def plan(codes: list[Any], window: int, *, finite: bool = False) -> tuple[GroupStream, list[int]]:
    """A plan over ``codes`` (a generator unless ``finite``) and the positions read so far."""
    read: list[int] = []

    def source():
        for position, code in enumerate(codes):
            read.append(position)
            yield code

    submissions = codes if finite else source()
    return group_stream(submissions, SET_ID, "python", None, window, {}), read


def line(judge_id: str, status: str = "succeeded", **fields: Any) -> dict[str, Any]:
    return {"id": judge_id, "status": status, "verdict": "AC" if status == "succeeded" else None,
            "language": "python", "image": "python", "compare_version": "1",
            "driver_version": "1", **fields}  # fmt: skip


def accept(stream: GroupStream, batch_id: str, ids: list[str | None]) -> list[int]:
    chunk = stream.next_chunk()
    stream.request(chunk)  # a valid body for the chunk
    stream.accepted(chunk, {"batch_id": batch_id, "ids": ids})
    return chunk


def ready(stream: GroupStream) -> dict[int, JudgeResult]:
    out = dict(stream.ready)
    stream.ready.clear()
    return out


def test_reads_lazily_and_keeps_at_most_the_window_in_flight():
    stream, read = plan([f"print({n})" for n in range(20)], window=8)
    stream.fill()
    assert len(read) == 8 and len(stream.pending) == 8  # nothing past the window is read
    accept(stream, "b1", [f"j{n}" for n in range(8)])
    stream.fill()
    assert len(read) == 8  # the window is full
    stream.finished("b1", [line("j0"), line("j1", status="running")])
    assert list(ready(stream)) == [0]
    stream.fill()
    assert len(read) == 8  # one free is less than a quarter of the window
    stream.finished("b1", [line("j1")])
    stream.fill()
    assert len(read) == 10 and list(stream.pending) == [8, 9]
    assert stream.in_flight[8].body is not None and stream.in_flight[2].body is None  # sent


def test_copies_of_one_submission_are_bounded_too():
    stream, read = plan(["same"] * 1000, window=4)
    stream.fill()
    assert len(read) == 16 and len(stream.pending) == 1  # 4 x window positions held at most


def test_identical_submissions_are_judged_once_each_with_its_own_metadata():
    right = "print(1)"
    stream, _ = plan([right, {"code": right, "metadata": {"k": 1}}, "print(2)",
                      {"code": right, "metadata": {"k": 2}}], window=2)  # fmt: skip
    stream.fill()
    assert list(stream.pending) == [0, 2]  # the twin waits for the first
    accept(stream, "b1", ["j0", "j2"])
    stream.finished("b1", [line("j0"), line("j2")])
    done = ready(stream)
    assert done[0].id == done[1].id == "j0"
    assert (done[0].metadata, done[1].metadata) == (None, {"k": 1})
    assert not stream.following
    stream.fill()  # its twin ended a moment ago: the kept result, no request
    assert ready(stream)[3].metadata == {"k": 2} and not stream.pending and not stream.late
    assert not stream.busy


def test_a_copy_of_a_submission_judged_long_ago_is_fetched_by_id():
    stream, _ = plan(["a", "b", "a"], window=1)
    stream.fill()
    accept(stream, "b1", ["ja"])
    stream.finished("b1", [line("ja")])
    stream.fill()
    accept(stream, "b2", ["jb"])
    stream.finished("b2", [line("jb")])  # only the last window's results are kept
    ready(stream)
    stream.fill()
    assert list(stream.late) == [(2, None, "ja")] and not stream.pending
    stream.late_fetched(JudgeResult.model_validate(line("ja")))
    assert ready(stream)[2].id == "ja" and not stream.busy


def test_the_same_language_spelled_out_is_the_same_submission():
    stream, _ = plan(["x", {"code": "x", "language": "python"}], window=4)
    stream.fill()
    assert len(stream.pending) == 1


def test_two_submissions_the_server_judges_as_one_share_its_result():
    stream, _ = plan(["x", {"code": "x", "image": "python"}], window=4)
    stream.fill()
    assert len(stream.pending) == 2  # differently spelled: the client cannot tell
    accept(stream, "b1", ["j", "j"])
    stream.finished("b1", [line("j")])
    assert sorted(ready(stream)) == [0, 1] and not stream.busy


def test_a_full_server_shrinks_requests_and_they_grow_back():
    stream, _ = plan([f"print({n})" for n in range(8)], window=8)
    stream.fill()
    chunk = stream.next_chunk()
    assert not stream.refused(chunk, Overloaded("full", retry_after_s=1))  # no pause: smaller
    assert stream.chunk == 4 and len(stream.pending) == 8
    accept(stream, "b1", ["a", "b", "c", "d"])
    assert stream.chunk == 8  # room again
    assert stream.news("b1", {"running": 3, "succeeded": 1})
    assert not stream.news("b1", {"running": 4})
    chunk = stream.next_chunk()
    assert not stream.refused(chunk, Overloaded("full", retry_after_s=1))
    chunk = stream.next_chunk()
    assert chunk == [4, 5]
    stream.refused(chunk, Overloaded("full", retry_after_s=1))
    stream.refused(stream.next_chunk(), Overloaded("full", retry_after_s=1))
    assert stream.chunk == 0  # nothing until room is freed
    assert stream.next_chunk() == []
    stream.finished("b1", [line("a")])
    assert stream.chunk == 1
    assert not stream.news("b1", {"running": 3, "succeeded": 1})  # that one was handed over


def test_a_refused_part_of_a_request_is_sent_again_in_a_smaller_one():
    stream, _ = plan(["a", "b", "c"], window=4)
    stream.fill()
    accept(stream, "b1", ["ja", None, "jc"])
    assert list(stream.pending) == [1] and stream.following == {"b1": {"ja": 0, "jc": 2}}
    assert stream.chunk == 2  # what was admitted, not more


def test_a_chunk_is_resent_under_its_key_and_a_smaller_one_under_another():
    stream, _ = plan(["a", "b", "c"], window=3)
    stream.fill()
    chunk = stream.next_chunk()
    body, key = stream.request(chunk)
    assert body["testset"] == SET_ID and [s["code"] for s in body["submissions"]] == [
        "a", "b", "c"]  # fmt: skip
    assert stream.request(chunk)[1] == key  # resent as the same request
    assert stream.request(chunk[:1])[1] != key  # a smaller chunk is another request
    stream.refused(chunk)  # the same ones go first again
    assert stream.next_chunk() == chunk


def lost_plan(finite: bool) -> tuple[GroupStream, list[int]]:
    stream, read = plan([{"code": f"c{n}", "metadata": {"n": n}} for n in range(6)] + ["c0"],
                        window=2, finite=finite)  # fmt: skip
    stream.fill()
    accept(stream, "b1", ["j0", "j1"])
    stream.finished("b1", [line("j0")])  # ready, not handed over yet
    return stream, read


def test_past_the_deadline_a_finite_input_gets_a_result_for_every_submission():
    stream, _ = lost_plan(finite=True)
    lost = dict(stream.lost("not finished in time"))
    assert sorted(lost) == list(range(7))
    assert lost[0].verdict == "AC"  # what was ready is handed over, not lost
    assert all(r.verdict == "IE" and r.score is None for p, r in lost.items() if p)
    assert lost[4].metadata == {"n": 4} and "not finished" in (lost[4].error or "")
    assert not stream.busy


def test_past_the_deadline_an_input_that_may_not_end_is_not_read_further():
    stream, read = lost_plan(finite=False)
    handed = []
    with pytest.raises(DeadlineExceeded, match="not read"):
        handed.extend(stream.lost("not finished in time"))
    assert sorted(p for p, _ in handed) == [0, 1] and len(read) == 2


def test_in_order_puts_results_back_in_the_inputs_order_or_refuses_a_gap():
    results = {p: JudgeResult.model_validate(line(f"j{p}")) for p in range(3)}
    assert [r.id for r in in_order([(2, results[2]), (0, results[0]), (1, results[1])])] == [
        "j0", "j1", "j2"]  # fmt: skip
    with pytest.raises(RuntimeError):
        in_order([(0, results[0]), (2, results[2])])


def test_the_old_chunk_keyword_gets_a_clear_error():
    with pytest.raises(InvalidRequest, match="window"):
        group_stream(["a"], SET_ID, "python", None, 4, {"chunk": 10})
