#!/usr/bin/env bash
# Quick start: prepare the machine, bring the service up on its embedded defaults (a local
# Ray cluster, the HTTP API on 127.0.0.1:8000), and run a first evaluation through the API.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/bootstrap.sh
.venv/bin/crucible-ray doctor
url=$(.venv/bin/crucible-ray up)
token=$(.venv/bin/crucible-ray token --user quickstart)
echo "POST $url/api/eval?wait=true  (examples/hello.py)" >&2
.venv/bin/python - "$url" "$token" <<'PY'
import json, pathlib, sys

import httpx

url, token = sys.argv[1:]
answer = httpx.post(f"{url}/api/eval?wait=true", timeout=120,
                    headers={"Authorization": f"Bearer {token}"},
                    json={"code": pathlib.Path("examples/hello.py").read_text()})
print(json.dumps(answer.json(), indent=2))
PY
echo "The service is up at $url (docs: $url/docs). Stop it with: .venv/bin/crucible-ray down" >&2
