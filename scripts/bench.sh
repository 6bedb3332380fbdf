#!/usr/bin/env bash
# The benchmark suite in one command (Debian 12, as root): sets up what the tests need, adds
# the peers (epicbox, llm-sandbox; erofs-utils for Ray's sandbox) and matplotlib, then runs
# benchmarks/run.py with your arguments (--quick, --only sandbox,peers,...). Results, charts
# and a summary land in benchmarks/results/. Not beside the test suite: both need the machine.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/bootstrap.sh
command -v mkfs.erofs >/dev/null || apt-get install -y -q --no-install-recommends erofs-utils
.venv/bin/pip install -q -e '.[test,bench]'
exec .venv/bin/python benchmarks/run.py "$@"
