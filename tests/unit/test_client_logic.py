"""Pure client logic: retry timing, the submit window, and what each HTTP status means."""

from __future__ import annotations

import random

import httpx
import pytest

from crucible_ray.api.schemas import EvalSubmission
from crucible_ray.client.protocol import error_for, submission, transport_error
from crucible_ray.client.retry import Retrier
from crucible_ray.client.window import SubmitWindow
from crucible_ray.errors import (
    AuthenticationError,
    CrucibleError,
    DeadlineExceeded,
    InvalidRequest,
    NotFound,
    Overloaded,
    RateLimited,
    ServerError,
    ServiceUnavailable,
)


def response(status: int, detail: object = "x", **headers: str) -> httpx.Response:
    return httpx.Response(status, json={"detail": detail}, headers=headers)


def test_each_status_maps_to_one_error():
    assert isinstance(error_for(response(401)), AuthenticationError)
    assert "CRUCIBLE_TOKEN" in str(error_for(response(401), has_token=False))
    assert isinstance(error_for(response(404)), NotFound)
    invalid = error_for(response(422, [{"loc": ["body", "timeout_s"], "msg": "too big"}]))
    assert isinstance(invalid, InvalidRequest) and invalid.field == "timeout_s"
    too_big = error_for(response(413, "code exceeds 100000 bytes"))
    assert isinstance(too_big, InvalidRequest) and too_big.field == "code"
    limited = error_for(response(429, **{"Retry-After": "7", "X-Crucible-Refusal": "rate_limited"}))
    assert isinstance(limited, RateLimited) and limited.retry_after_s == 7
    busy = error_for(response(429, **{"Retry-After": "2"}))
    assert type(busy) is Overloaded and busy.retry_after_s == 2
    assert isinstance(error_for(response(503)), ServiceUnavailable)
    assert isinstance(error_for(response(500)), ServerError)
    assert type(error_for(response(418))) is CrucibleError


def test_a_request_that_may_have_arrived_is_not_resent():
    never_arrived = httpx.ConnectError("refused")
    maybe_arrived = httpx.ReadTimeout("slow")
    assert isinstance(transport_error(never_arrived, "u", resendable=False), ServiceUnavailable)
    assert isinstance(transport_error(maybe_arrived, "u", resendable=True), ServiceUnavailable)
    unsafe = transport_error(maybe_arrived, "u", resendable=False)
    assert not isinstance(unsafe, ServiceUnavailable) and "may have been accepted" in str(unsafe)


def test_client_side_validation_names_the_field():
    with pytest.raises(InvalidRequest) as caught:
        submission({"code": "", "language": "python"})
    assert caught.value.field == "code"
    assert submission({"code": "print(1)"}).language == "python"


def test_retrier_honours_retry_after_and_backs_off_with_jitter():
    retrier = Retrier(deadline_s=1000, base_s=0.5, max_s=8, rng=random.Random(1))
    assert 3 <= retrier.pause(Overloaded("busy", retry_after_s=3)) <= 3.5
    delays = [retrier.pause(ServiceUnavailable("down")) for _ in range(10)]
    assert all(0 <= d <= 8 for d in delays)  # capped
    assert max(delays) > 1  # and growing: full jitter over 0..base*2^n


def test_retrier_stops_at_the_deadline_and_never_retries_the_final_errors():
    retrier = Retrier(deadline_s=2, base_s=0.1, max_s=1)
    with pytest.raises(DeadlineExceeded) as caught:
        retrier.pause(RateLimited("slow down", retry_after_s=60))
    assert isinstance(caught.value.last_error, RateLimited)
    for final in (InvalidRequest("bad"), AuthenticationError("who"), NotFound("gone")):
        with pytest.raises(type(final)):
            Retrier(deadline_s=100).pause(final)


def items(n: int):
    return (EvalSubmission(code=f"print({i})") for i in range(n))


def test_submit_window_reads_lazily_and_refills_by_halves():
    consumed = []

    def source():
        for item in items(100):
            consumed.append(item)
            yield item

    window = SubmitWindow(source(), limit=8)
    assert len(window.next_chunk(in_flight=0)) == 8 and len(consumed) == 8
    window.submitted([], 0, 8)  # nothing new; still full
    assert window.next_chunk(in_flight=7) == []  # one free slot: wait for half
    assert len(window.next_chunk(in_flight=4)) == 4


def test_submit_window_shrinks_on_overload_and_grows_back():
    window = SubmitWindow(items(50), limit=16)
    chunk = window.next_chunk(in_flight=0)
    window.submitted(chunk, admitted=8, in_flight=8)  # the server took only 8
    assert window.size == 8
    again = window.next_chunk(in_flight=4)
    assert again[0].code == "print(8)"  # the refused ones come first, in order
    window.submitted(again, admitted=len(again), in_flight=8)
    assert window.size == 9  # additive increase
    drained = 0
    while window.more:
        chunk = window.next_chunk(in_flight=0)
        window.submitted(chunk, len(chunk), 0)
        drained += len(chunk)
    assert drained == 50 - 8 - len(again)


def test_a_submission_answered_with_a_5xx_is_resent_under_the_same_key():
    """The server may have admitted it before failing: only its Idempotency-Key makes resending
    safe (the server answers a resend with the same evaluation), so every try carries it."""
    from crucible_ray.client import Client

    seen: list[tuple[str, str | None]] = []

    def server(request: httpx.Request) -> httpx.Response:
        seen.append((request.method, request.headers.get("idempotency-key")))
        return httpx.Response(500, json={"detail": "boom"})

    client = Client("http://crucible.test", "t", transport=httpx.MockTransport(server),
                    deadline_s=1, backoff_base_s=0.01, backoff_max_s=0.05)  # fmt: skip
    with pytest.raises(DeadlineExceeded):
        client.submit("print(1)")
    keys = {key for method, key in seen if method == "POST"}
    assert len(seen) > 1 and len(keys) == 1 and None not in keys
    seen.clear()
    with pytest.raises(DeadlineExceeded):
        client.submit("print(2)")
    assert {key for _, key in seen}.isdisjoint(keys)  # another submission, another key
    seen.clear()
    with pytest.raises(DeadlineExceeded):
        client.result("abc")
    assert len(seen) > 1 and {key for _, key in seen} == {None}  # reads need no key


def test_non_object_error_bodies_still_map():
    assert isinstance(error_for(httpx.Response(502, json=["bad", "gateway"])), ServerError)
    assert isinstance(error_for(httpx.Response(404, text="plain")), NotFound)


def test_a_refused_batch_is_halved_deferred_or_waited_for():
    from crucible_ray.client.protocol import retry_batch_with

    busy = Overloaded("full", retry_after_s=1)
    assert retry_batch_with(busy, 8, defer=False) == 4
    assert retry_batch_with(busy, 1, defer=True) == 0  # results in flight will free room
    assert retry_batch_with(busy, 1, defer=False) is None
    assert retry_batch_with(RateLimited("slow", retry_after_s=9), 8, defer=True) is None
