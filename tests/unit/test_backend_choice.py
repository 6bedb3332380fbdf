"""Choosing a backend (pure logic, with stand-in backends that only answer ``check``): auto
takes the cheapest one that can enforce the policy here; a named one never falls back."""

from __future__ import annotations

import pytest

from crucible_ray.errors import RuntimeUnavailable, SandboxUnavailable
from crucible_ray.policy import SandboxPolicy
from crucible_ray.sandbox import registry


class CheckOnly:
    """Answers ``check`` only: enough for the choice, nothing runs."""

    def __init__(self, name: str, refusal: str | None) -> None:
        self.name, self.refusal = name, refusal

    def check(self, policy: SandboxPolicy) -> str:
        if self.refusal:
            raise RuntimeUnavailable(self.refusal)
        return "runsc"


@pytest.fixture
def host(monkeypatch):
    refusals: dict[str, str | None] = {"runsc": None, "docker": None}
    monkeypatch.setattr(registry, "PREFERENCE", ("runsc", "docker"))
    monkeypatch.setattr(registry, "make_backend", lambda name: CheckOnly(name, refusals[name]))
    return refusals


def test_auto_takes_the_cheapest_usable_backend(host):
    assert registry.backend_for(SandboxPolicy()).name == "runsc"


def test_auto_takes_the_next_when_the_cheapest_cannot_enforce_the_policy(host):
    host["runsc"] = "cgroups are not usable"
    assert registry.backend_for(SandboxPolicy(backend="auto")).name == "docker"
    backend, passed_over = registry.choose(SandboxPolicy())
    assert (backend.name, passed_over) == ("docker", ["runsc: cgroups are not usable"])


def test_the_shipped_preference_puts_the_cheapest_backend_first():
    # runsc costs under half the docker backend's CPU per sandbox (benchmarks/results/peers.md)
    assert registry.PREFERENCE == ("runsc", "docker")


def test_auto_refuses_with_every_reason_when_none_can(host):
    host.update(runsc="runsc is too old", docker="crucible-runsc is not registered")
    with pytest.raises(SandboxUnavailable) as refused:
        registry.backend_for(SandboxPolicy())
    assert "runsc: runsc is too old" in str(refused.value)
    assert "docker: crucible-runsc is not registered" in str(refused.value)


def test_a_named_backend_never_falls_back(host):
    host["runsc"] = "cgroups are not usable"
    backend = registry.backend_for(SandboxPolicy(backend="runsc"))
    with pytest.raises(RuntimeUnavailable, match="cgroups"):  # its own check, at start()
        backend.check(SandboxPolicy(backend="runsc"))
