from crucible_ray.execution.autoscale import decide

LIMITS = {"slots_per_actor": 2, "min_actors": 1, "max_actors": 4, "downscale_delay_s": 10}


def test_scales_up_to_demand_within_max():
    assert decide(demand=5, live=1, idle_since={}, now=0, **LIMITS).add == 2
    assert decide(demand=100, live=1, idle_since={}, now=0, **LIMITS).add == 3
    assert decide(demand=0, live=0, idle_since={}, now=0, **LIMITS).add == 1  # min


def test_scales_down_only_actors_idle_long_enough_oldest_first():
    idle = {"a": 0.0, "b": 5.0, "c": 95.0}
    decision = decide(demand=0, live=4, idle_since=idle, now=100, **LIMITS)
    assert decision.add == 0 and decision.remove == ["a", "b"]  # c idle only 5 s


def test_never_below_min_or_demand():
    idle = {"a": 0.0, "b": 0.0}
    assert decide(demand=0, live=1, idle_since={"a": 0.0}, now=100, **LIMITS).remove == []
    assert decide(demand=3, live=2, idle_since=idle, now=100, **LIMITS).remove == []
