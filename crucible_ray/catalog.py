"""What each language is, as its users see it: ``GET /api/languages``, ``crucible-ray
languages``, ``CrucibleClient.languages()``. Built from :mod:`crucible_ray.languages` (the one
source of each language's commands and stage limits) and the policy in force (the run's)."""

from __future__ import annotations

import json
from pathlib import Path

from crucible_ray.images.local import image_path
from crucible_ray.images.rootfs import VERSIONS_FILE, image_digest
from crucible_ray.languages import LANGUAGES, LanguageSpec
from crucible_ray.models import CompileStageInfo, LanguageInfo, RunStageInfo
from crucible_ray.policy import SandboxPolicy


def language_info(spec: LanguageSpec, policy: SandboxPolicy,
                  images_root: Path | None = None) -> LanguageInfo:  # fmt: skip
    run = policy.for_language(spec.policy_overrides)
    stage = spec.compile
    return LanguageInfo(
        name=spec.name,
        source_file=spec.source_file,
        packages=list(spec.packages),
        image=image_digest(spec),
        versions=image_versions(spec, images_root),
        compile=None
        if stage is None
        else CompileStageInfo(
            command=stage.command,
            memory_mb=stage.memory_mb,
            pids_limit=stage.pids_limit,
            cpus=stage.cpus,
            timeout_s=stage.timeout_s,
            build_mb=stage.build_mb,
        ),
        run=RunStageInfo(
            memory_mb=run.memory_mb,
            pids_limit=run.pids_limit,
            cpus=run.cpus,
            timeout_s=run.timeout_s,
            max_timeout_s=run.max_timeout_s,
            tmp_size_mb=run.tmp_size_mb,
            tmp_exec=run.tmp_exec,
        ),
    )


def languages(policy: SandboxPolicy, images_root: Path | None = None) -> list[LanguageInfo]:
    return [language_info(spec, policy, images_root) for spec in LANGUAGES.values()]


def image_versions(spec: LanguageSpec, images_root: Path | None = None) -> dict[str, str] | None:
    """The package versions recorded in the built root image of ``spec`` on this machine."""
    try:
        text = (image_path(spec, images_root) / "rootfs" / VERSIONS_FILE).read_text()
        versions = json.loads(text)
    except (OSError, ValueError):
        return None
    return {str(k): str(v) for k, v in versions.items()} if isinstance(versions, dict) else None
