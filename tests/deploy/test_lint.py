"""yamllint over every deployment file, the YAML inside the RayService included, and shell
syntax of the node scripts."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
from yamllint import config, linter

from tests.deploy.manifests import AWS, GITOPS, KUBERAY, PROGRESSIVE, REPO, WORKFLOWS, rayservice

CONFIG = config.YamlLintConfig(file=str(REPO / "cluster" / "yamllint.yaml"))
FILES = sorted([*KUBERAY.glob("*.yaml"), *AWS.glob("*.yaml"), *PROGRESSIVE.glob("*.yaml"),
                *GITOPS.glob("*.yaml"), *WORKFLOWS.glob("*.yml"),
                REPO / "cluster" / "yamllint.yaml"])  # fmt: skip
SCRIPTS = sorted([*AWS.glob("*.sh"), *(REPO / "cluster" / "node").glob("*.sh")])


def _problems(text: str) -> list[str]:
    return [f"{p.line}:{p.column} {p.message}" for p in linter.run(text, CONFIG)]


@pytest.mark.parametrize("path", FILES, ids=lambda p: str(p.relative_to(REPO)))
def test_yaml_is_lint_clean(path: Path) -> None:
    assert _problems(path.read_text()) == []


def test_the_embedded_serve_config_is_lint_clean() -> None:
    assert _problems(rayservice()["spec"]["serveConfigV2"]) == []


def test_lint_catches_a_duplicate_key() -> None:
    assert _problems("a: 1\na: 2\n") != []


@pytest.mark.parametrize("path", SCRIPTS, ids=lambda p: p.name)
def test_scripts_parse(path: Path) -> None:
    bash = shutil.which("bash")
    assert bash is not None
    subprocess.run([bash, "-n", str(path)], check=True)
