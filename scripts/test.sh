#!/usr/bin/env bash
# The whole test suite: prepare the machine (engine, gVisor, images), lint, then pytest.
# With CI=true a missing engine, runtime or image fails the run instead of skipping.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/bootstrap.sh --test
.venv/bin/ruff check crucible_ray tests benchmarks seccomp examples cluster
.venv/bin/ruff format --check crucible_ray tests benchmarks seccomp examples cluster
exec .venv/bin/pytest "$@"
