"""The languages as users see them (pure: built from languages.py and the policy)."""

from __future__ import annotations

import json

from crucible_ray.catalog import language_info, languages
from crucible_ray.images.local import image_path
from crucible_ray.images.rootfs import VERSIONS_FILE
from crucible_ray.languages import IMAGES, LANGUAGES
from crucible_ray.policy import SandboxPolicy


def test_the_run_limits_are_the_policys_and_the_compile_stage_the_languages(tmp_path):
    policy = SandboxPolicy(memory_mb=256, cpus=1.0, pids_limit=20)
    listed = {info.name: info for info in languages(policy, images_root=tmp_path)}
    assert set(listed) == set(IMAGES)
    assert {n for n, i in listed.items() if i.default} == set(LANGUAGES)
    science = listed["python-science"]
    assert (science.language, science.default, science.run.memory_mb) == ("python", False, 512)
    assert "python3-numpy" in science.packages and "numpy" in science.summary
    go, stage = listed["go"], LANGUAGES["go"].compile
    assert (go.run.memory_mb, go.run.cpus, go.run.pids_limit) == (256, 1.0, 20)
    assert (go.compile.command, go.compile.memory_mb, go.compile.timeout_s) == (
        stage.command, stage.memory_mb, stage.timeout_s)  # fmt: skip
    assert listed["python"].compile is None and listed["go"].versions is None  # not built here


def test_versions_come_from_the_built_image(tmp_path):
    spec = LANGUAGES["cpp"]
    recorded = image_path(spec, tmp_path) / "rootfs" / VERSIONS_FILE
    recorded.parent.mkdir(parents=True)
    recorded.write_text(json.dumps({"g++": "4:12.2.0-3"}))
    assert language_info(spec, SandboxPolicy(), tmp_path).versions == {"g++": "4:12.2.0-3"}
    recorded.write_text("not json")
    assert language_info(spec, SandboxPolicy(), tmp_path).versions is None
