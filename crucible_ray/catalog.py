"""What each language is, as its users see it: ``GET /api/languages``, ``crucible-ray
languages``, ``CrucibleClient.languages()``. Built from :mod:`crucible_ray.languages` (the one
source of each language's commands and stage limits) and the policy in force (the run's)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TypeVar

from pydantic import BaseModel

from crucible_ray.images.local import image_path
from crucible_ray.images.rootfs import VERSIONS_FILE, image_digest
from crucible_ray.languages import IMAGES, LanguageSpec
from crucible_ray.models import CompileStageInfo, LanguageInfo, RunStageInfo
from crucible_ray.policy import SandboxPolicy

M = TypeVar("M", bound=BaseModel)


def language_info(spec: LanguageSpec, policy: SandboxPolicy,
                  images_root: Path | None = None) -> LanguageInfo:  # fmt: skip
    run = policy.for_language(spec.policy_overrides)
    return LanguageInfo(
        name=spec.name,
        language=spec.language,
        default=spec.is_default,
        summary=spec.summary,
        source_file=spec.source_file,
        packages=list(spec.packages),
        image=image_digest(spec),
        versions=image_versions(spec, images_root),
        compile=None if spec.compile is None else _fields(CompileStageInfo, spec.compile),
        run=_fields(RunStageInfo, run),
    )


def _fields(model: type[M], source: object) -> M:
    """``model`` from the same-named attributes of ``source`` (one definition of each limit)."""
    return model.model_validate({name: getattr(source, name) for name in model.model_fields})


def languages(policy: SandboxPolicy, images_root: Path | None = None) -> list[LanguageInfo]:
    return [language_info(spec, policy, images_root) for spec in IMAGES.values()]


def image_versions(spec: LanguageSpec, images_root: Path | None = None) -> dict[str, str] | None:
    """The package versions recorded in the built root image of ``spec`` on this machine."""
    try:
        text = (image_path(spec, images_root) / "rootfs" / VERSIONS_FILE).read_text()
        versions = json.loads(text)
    except (OSError, ValueError):
        return None
    return {str(k): str(v) for k, v in versions.items()} if isinstance(versions, dict) else None
