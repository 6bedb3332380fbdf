"""Fair shares on a real cluster with real sandboxes: one user's flood takes turns with
another user's work instead of holding every slot until it drains."""

from __future__ import annotations

import pytest

from crucible_ray import EvalRequest, Overloaded
from tests.conftest import wait_for

pytestmark = pytest.mark.docker
SLEEP = "import time\ntime.sleep(1)\nprint('a')"


def test_a_flood_takes_turns_with_another_users_evaluations(make_client):
    client = make_client(slots_per_actor=2, min_actors=1, max_actors=1, max_pending=20,
                         max_pending_per_user=10)  # fmt: skip
    assert wait_for(lambda: client.stats()["slots_ready"] == 2, timeout_s=120)
    flood = [client.submit(EvalRequest(code=SLEEP), user="alice") for _ in range(10)]
    with pytest.raises(Overloaded, match=r"10 of your evaluations .* per user"):
        client.submit(EvalRequest(code=SLEEP), user="alice")  # her share of admission is full
    late = [client.submit(EvalRequest(code="print('b')"), user="bob") for _ in range(2)]
    results = {i: client.result(i, timeout_s=180) for i in flood + late}
    assert all(r is not None and r.status == "succeeded" for r in results.values())
    order = sorted(results, key=lambda i: results[i].finished_at)
    # First in, first out, bob's would end last (positions 10 and 11). Fair: each of his
    # waits for one slot to free up, so both end among the first few.
    assert max(order.index(i) for i in late) <= 5, [results[i].finished_at for i in order]
