import pytest
from fastapi import HTTPException

from crucible_ray.api.waits import TOO_MANY_WAITS, LongPolls


def test_a_users_waits_are_bounded_and_released():
    polls = LongPolls()
    with polls.hold("alice", 2), polls.hold("alice", 2):
        with pytest.raises(HTTPException) as refused, polls.hold("alice", 2):
            pass
        assert refused.value.status_code == 429
        assert refused.value.headers["X-Crucible-Refusal"] == TOO_MANY_WAITS
        with polls.hold("bob", 2):  # another user is not affected
            assert (polls.held("alice"), polls.held("bob")) == (2, 1)
    assert (polls.held("alice"), polls.held("bob")) == (0, 0)
    assert polls._held == {}  # nothing kept for users no longer waiting
