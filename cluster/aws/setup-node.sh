#!/usr/bin/env bash
# Every node of the AWS cluster: crucible-ray (with Ray) in /opt/crucible-ray/.venv from the
# source the launcher copied to ~/crucible-ray, and `ray`/`crucible-ray` on PATH.
# Idempotent; on a prepared AMI it only checks.
set -euo pipefail
src=~/crucible-ray
venv=/opt/crucible-ray/.venv
if ! command -v python3 >/dev/null || ! python3 -c 'import venv, ensurepip' 2>/dev/null; then
  sudo apt-get update -qq && sudo DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-venv
fi
stamp="$venv/.installed"
want=$(cat "$src/pyproject.toml" "$src/crucible_ray/_version.py" | sha256sum | cut -c1-16)
if [[ "$(cat "$stamp" 2>/dev/null)" != "$want" ]]; then
  sudo mkdir -p /opt/crucible-ray && sudo chown "$(id -u):$(id -g)" /opt/crucible-ray
  python3 -m venv "$venv"
  "$venv/bin/pip" install -q -e "$src"
  echo "$want" > "$stamp"
fi
sudo ln -sf "$venv/bin/ray" /usr/local/bin/ray
sudo ln -sf "$venv/bin/crucible-ray" /usr/local/bin/crucible-ray
