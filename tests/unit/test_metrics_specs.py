"""The metric definitions (pure): valid for Ray and Prometheus, tags checked on use."""

from __future__ import annotations

import re

import pytest

from crucible_ray.metrics import SPECS, _check


def test_names_units_and_buckets_are_sound():
    for name, spec in SPECS.items():
        assert re.fullmatch(r"crucible_[a-z_]+", name) and spec.description
        assert not name.endswith("_total")  # Ray adds it to counters
        if spec.kind == "histogram":
            assert name.endswith("_seconds") and list(spec.boundaries) == sorted(spec.boundaries)
        assert "user" not in spec.tags and "id" not in spec.tags  # low cardinality only
    assert SPECS["crucible_evaluations"].exported == "ray_crucible_evaluations_total"
    assert SPECS["crucible_queue_depth"].exported == "ray_crucible_queue_depth"


def test_tags_are_checked_on_every_use():
    assert _check("crucible_rejected", {"reason": "overloaded"}) == {"reason": "overloaded"}
    with pytest.raises(ValueError, match="takes tags"):
        _check("crucible_rejected", {})
    with pytest.raises(ValueError, match="takes tags"):
        _check("crucible_admitted", {"user": "ann"})
