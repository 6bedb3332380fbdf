#!/usr/bin/env bash
# Quick start: prepare the machine, then run a first evaluation in a gVisor sandbox.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/bootstrap.sh
.venv/bin/crucible-ray doctor
.venv/bin/crucible-ray run examples/hello.py
