"""The GitHub Actions workflow (.github/workflows/ci.yml): valid against GitHub's workflow schema
(check-jsonschema's bundled copy), free of zizmor's security findings, and holding to the
rules it is written to: read-only token, actions pinned by commit, no persisted credentials, a
time limit, the repository's own CI entry point."""

from __future__ import annotations

import copy
import json
import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.deploy.manifests import WORKFLOWS
from tests.deploy.tools import run

WORKFLOW = WORKFLOWS / "ci.yml"
PINNED = re.compile(r"^[\w.-]+/[\w.-]+(/[\w./-]+)?@[0-9a-f]{40}$")
CI_TIME_LIMIT_MIN = 90  # CI's limit for one run of .ci/run


def workflow() -> dict[str, Any]:
    return yaml.safe_load(WORKFLOW.read_text())


def _write(folder: Path, doc: dict[str, Any] | str, name: str = "ci.yml") -> Path:
    path = folder / ".github" / "workflows" / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(doc if isinstance(doc, str) else yaml.safe_dump(doc, sort_keys=False))
    return path


def _schema_failures(*paths: Path) -> set[str]:
    """The files GitHub's workflow schema refuses (one run of check-jsonschema for all)."""
    done = run("check-jsonschema", "check-jsonschema", "--builtin-schema",
               "vendor.github-workflows", "--output-format", "JSON", *map(str, paths))  # fmt: skip
    report = json.loads(done.stdout)
    assert not report.get("parse_errors"), report["parse_errors"]
    assert (done.returncode == 0) == (report["status"] == "ok"), done.stderr
    return {e["filename"] for e in report.get("errors", [])}


def test_the_workflow_matches_githubs_schema() -> None:
    assert _schema_failures(WORKFLOW) == set()


BROKEN_FOR_THE_SCHEMA = [
    lambda w: w["jobs"]["test"].pop("runs-on"),
    lambda w: w["jobs"]["test"].update({"timeout-minutes": "ninety"}),
    lambda w: w["jobs"]["test"]["steps"][0].update({"with": "persist-credentials"}),
    lambda w: w.update({"permissions": {"contents": "readonly"}}),
    lambda w: w["jobs"]["test"].update({"step": w["jobs"]["test"].pop("steps")}),
]


def test_the_schema_check_refuses_broken_workflows(tmp_path: Path) -> None:
    paths = []
    for number, mutate in enumerate(BROKEN_FOR_THE_SCHEMA):
        broken = copy.deepcopy(workflow())
        mutate(broken)
        paths.append(_write(tmp_path, broken, f"broken-{number}.yml"))
    assert _schema_failures(*paths) == {str(p) for p in paths}


def _zizmor(path: Path) -> tuple[int, list[str]]:
    """zizmor's findings, pedantic persona (its default one lets a workflow-wide write-all
    pass when there is one job); offline: no GitHub API calls. Not the auditor persona: that
    one reports any self-hosted runner, which this workflow needs (see its comment)."""
    done = run("zizmor", "zizmor", "--offline", "--persona", "pedantic", "--format", "json",
               str(path))  # fmt: skip
    findings = json.loads(done.stdout or "[]")
    return done.returncode, sorted({f["ident"] for f in findings})


def test_zizmor_finds_nothing() -> None:
    assert _zizmor(WORKFLOW) == (0, [])


def test_zizmor_flags_an_unsafe_workflow(tmp_path: Path) -> None:
    text = WORKFLOW.read_text()
    text = re.sub(r"actions/checkout@[0-9a-f]{40}", "actions/checkout@v4", text)
    text = text.replace("persist-credentials: false", "fetch-depth: 1")
    text = text.replace("permissions:\n  contents: read", "permissions: write-all")
    code, idents = _zizmor(_write(tmp_path, text))
    assert code != 0
    assert {"unpinned-uses", "artipacked", "excessive-permissions"} <= set(idents)


def _jobs_steps(doc: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    return [(name, step) for name, job in doc["jobs"].items() for step in job.get("steps", [])]


def workflow_problems(doc: dict[str, Any], text: str) -> list[str]:
    problems = []
    if doc.get("permissions") != {"contents": "read"}:
        problems.append(f"top-level permissions {doc.get('permissions')}, want contents: read")
    for name, job in doc["jobs"].items():
        if "permissions" in job:
            problems.append(f"{name} widens its permissions")
        if not 0 < job.get("timeout-minutes", 0) <= CI_TIME_LIMIT_MIN:
            problems.append(f"{name}: timeout-minutes {job.get('timeout-minutes')}")
    if not doc.get("concurrency", {}).get("group"):
        problems.append("no concurrency group")
    for name, step in _jobs_steps(doc):
        uses = step.get("uses")
        if uses is None:
            continue
        if not PINNED.match(uses):
            problems.append(f"{name}: {uses} is not pinned to a commit")
        elif not re.search(re.escape(uses) + r" +# v\d+\.\d+\.\d+\s*$", text, re.M):
            problems.append(f"{name}: {uses} has no version comment")
        if uses.startswith("actions/checkout@") and (
            step.get("with", {}).get("persist-credentials") is not False
        ):
            problems.append(f"{name}: checkout persists its credentials")
    if ("test", {"name": ".ci/run", "run": "bash .ci/run"}) not in _jobs_steps(doc):
        problems.append("the job does not run .ci/run")
    return problems


def test_the_workflow_keeps_its_rules() -> None:
    assert workflow_problems(workflow(), WORKFLOW.read_text()) == []


@pytest.mark.parametrize(
    "mutate",
    [
        lambda w: w.update({"permissions": {"contents": "read", "packages": "write"}}),
        lambda w: w.update({"permissions": "read-all"}),
        lambda w: w["jobs"]["test"].update({"permissions": {"contents": "write"}}),
        lambda w: w["jobs"]["test"].pop("timeout-minutes"),
        lambda w: w["jobs"]["test"].update({"timeout-minutes": 360}),
        lambda w: w.pop("concurrency"),
        lambda w: w["jobs"]["test"]["steps"][0].update({"uses": "actions/checkout@v4"}),
        lambda w: w["jobs"]["test"]["steps"][0]["with"].pop("persist-credentials"),
        lambda w: w["jobs"]["test"]["steps"][1].update({"run": "scripts/test.sh"}),
    ],
)
def test_the_rule_check_catches_a_weakened_workflow(mutate: Any) -> None:
    broken = copy.deepcopy(workflow())
    mutate(broken)
    assert workflow_problems(broken, WORKFLOW.read_text()) != []


def test_an_action_pinned_without_its_version_is_caught() -> None:
    text = re.sub(r" +# v\d+\.\d+\.\d+", "", WORKFLOW.read_text())
    assert workflow_problems(workflow(), text) != []
