import json
from pathlib import Path

import pytest
from pydantic import ValidationError

from crucible_ray.errors import RuntimeUnavailable
from crucible_ray.languages import IMAGES, LANGUAGES
from crucible_ray.policy import SandboxPolicy, runsc_variant

ROOT = Path(__file__).resolve().parents[2]


def test_defaults_are_the_security_architecture():
    p = SandboxPolicy()
    assert (p.runtime, p.network, p.memory_mb, p.cpus, p.pids_limit) == (
        "runsc",
        "none",
        100,
        0.5,
        50,
    )
    assert (p.timeout_s, p.max_timeout_s, p.user) == (30, 30, "65534:65534")
    assert p.output_limit_bytes == 1 << 20
    assert p.seccomp_path == ROOT / "crucible_ray" / "seccomp" / "crucible.json"


@pytest.mark.parametrize(
    "field,value",
    [("timeout_s", 31), ("timeout_s", 0), ("max_timeout_s", 3601), ("network", "bridge"),
     ("runtime", "kata"), ("user", "0:0"), ("memory_mb", 1), ("unknown", 1)],
)  # fmt: skip
def test_unsafe_or_invalid_values_are_refused(field, value):
    with pytest.raises(ValidationError):
        SandboxPolicy(**{field: value})


def test_the_longest_timeout_is_the_policys_not_a_constant():
    from crucible_ray.errors import InvalidRequest
    from crucible_ray.models import EvalRequest

    request = EvalRequest(code="print(1)", timeout_s=45)
    with pytest.raises(InvalidRequest, match="<= 30") as refused:
        SandboxPolicy().resolve(request)
    assert refused.value.field == "timeout_s"
    assert SandboxPolicy(max_timeout_s=60).resolve(request)[2] == 45


def test_one_policy_from_the_settings_reaches_the_dispatcher(tmp_path):
    from crucible_ray.execution import DispatcherConfig
    from crucible_ray.settings import Settings

    secret = "unit-test-secret-0123456789abcdefghij"
    settings = Settings(state_dir=tmp_path, jwt_secret=secret, sandbox={"memory_mb": 77},
                        dispatcher=DispatcherConfig(min_actors=2))  # fmt: skip
    assert settings.dispatcher.policy is settings.sandbox and settings.sandbox.memory_mb == 77
    assert settings.dispatcher.min_actors == 2 and settings.dispatcher.state_dir == tmp_path
    with pytest.raises(ValidationError, match="CRUCIBLE_SANDBOX__"):  # two sources: refused
        Settings(jwt_secret=secret, dispatcher={"policy": {"memory_mb": 64}})


def test_language_overrides_are_validated_and_local():
    base = SandboxPolicy()
    big = base.for_language({"memory_mb": 512, "tmp_exec": True})
    assert big.memory_mb == 512 and big.tmp_exec and base.memory_mb == 100
    # No language loosens the run's limits: a compiler's needs are its stage's (languages.py).
    assert all(base.for_language(spec.policy_overrides) is base for spec in LANGUAGES.values())
    # One variant does, by memory alone: the scientific stack does not import in 100 MiB.
    science = base.for_language(IMAGES["python-science"].policy_overrides)
    assert science.model_dump() == {**base.model_dump(), "memory_mb": 512}
    with pytest.raises(ValidationError):
        base.for_language({"memory_mb": -1})


def test_missing_seccomp_profile_refuses(tmp_path):
    with pytest.raises(RuntimeUnavailable):
        SandboxPolicy(seccomp_profile=tmp_path / "absent.json").seccomp_json()


def test_runsc_variant_allows_clone3_only():
    profile = json.loads((ROOT / "seccomp" / "crucible.json").read_text())
    variant = runsc_variant(profile)
    runc_rules = {r["names"][0]: r for r in profile["syscalls"] if len(r["names"]) == 1}
    assert runc_rules["clone3"]["errnoRet"] == 38
    assert {"names": ["clone3"], "action": "SCMP_ACT_ALLOW"} in variant["syscalls"]
    assert variant["syscalls"][0] == profile["syscalls"][0]
