#!/usr/bin/env bash
# Quick start: prepare the machine, bring the service up on its embedded defaults (a local
# Ray cluster, the HTTP API on 127.0.0.1:8000), and run a first evaluation through the API.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/bootstrap.sh
.venv/bin/crucible-ray doctor
url=$(.venv/bin/crucible-ray up)
export CRUCIBLE_URL="$url" CRUCIBLE_TOKEN
CRUCIBLE_TOKEN=$(.venv/bin/crucible-ray token --user quickstart)
echo "crucible-ray eval examples/hello.py  (POST $url/api/eval)" >&2
.venv/bin/crucible-ray eval examples/hello.py --json
cat >&2 <<MSG
The service is up at $url (API docs: $url/docs). Stop it with: .venv/bin/crucible-ray down
Dashboard: $url/dashboard#token=\$(.venv/bin/crucible-ray token --user ops --operator)
MSG
