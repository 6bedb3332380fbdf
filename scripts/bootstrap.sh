#!/usr/bin/env bash
# Prepare a Debian 12 machine to run crucible-ray: system packages, the Python environment,
# gVisor registered with Docker, dockerd running, sandbox images built. Idempotent: a second
# run only checks. Elsewhere (no root, not Debian) it says exactly what to install.
set -euo pipefail
cd "$(dirname "$0")/.."

say() { printf '\033[1m[bootstrap]\033[0m %s\n' "$*" >&2; }
die() { printf '\033[31m[bootstrap] %s\033[0m\n' "$*" >&2; exit 1; }

# erofs-utils: mkfs.erofs builds the runsc backend's goferless EROFS root images.
APT_PACKAGES=(docker.io debootstrap erofs-utils python3-venv postgresql)
need_runsc_from_backports() {
  # The gVisor in bookworm (2022-12-19) lacks fixes crucible relies on; take the newest.
  ! command -v runsc >/dev/null || [[ "$(runsc --version | head -1)" < "runsc version 0.0~2024" ]]
}

missing=()
for cmd in dockerd debootstrap mkfs.erofs; do command -v "$cmd" >/dev/null || missing+=("$cmd"); done
ls /usr/lib/postgresql/*/bin/pg_ctl >/dev/null 2>&1 || missing+=("postgresql")
python3 -c 'import venv, ensurepip' 2>/dev/null || missing+=("python3-venv")
if [[ ${#missing[@]} -gt 0 ]] || need_runsc_from_backports; then
  if [[ $(id -u) -ne 0 || ! -f /etc/debian_version ]]; then
    die "missing: ${missing[*]} runsc>=2024. On Debian 12 as root this script installs them.
Elsewhere install: Docker Engine (https://docs.docker.com/engine/install/), gVisor runsc >= 2024
(https://gvisor.dev/docs/user_guide/install/), debootstrap, python3-venv (Python >= 3.11), PostgreSQL (for the store tests)."
  fi
  say "installing ${APT_PACKAGES[*]} and runsc (bookworm-backports)"
  if ! grep -rqs "bookworm-backports" /etc/apt/sources.list /etc/apt/sources.list.d/; then
    echo "deb http://deb.debian.org/debian bookworm-backports main" \
      > /etc/apt/sources.list.d/crucible-backports.list
  fi
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq "${APT_PACKAGES[@]}" >/dev/null
  apt-get install -y -qq -t bookworm-backports runsc >/dev/null
fi

# The test suite also drives a real headless Chromium (the dashboard) and a real Prometheus.
if [[ "${1:-}" == "--test" ]]; then
  test_missing=()
  for cmd in chromium chromedriver prometheus promtool; do
    command -v "$cmd" >/dev/null || test_missing+=("$cmd")
  done
  if [[ ${#test_missing[@]} -gt 0 ]]; then
    if [[ $(id -u) -ne 0 || ! -f /etc/debian_version ]]; then
      die "missing for the tests: ${test_missing[*]} (Debian: chromium chromium-driver prometheus)"
    fi
    say "installing chromium, chromium-driver and prometheus (for the monitoring tests)"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    # No recommends: nothing is started as a service, nothing extra is pulled in.
    apt-get install -y -qq --no-install-recommends chromium chromium-driver prometheus >/dev/null
  fi
fi

# Python environment, reinstalled only when pyproject.toml changes.
stamp=.venv/.crucible-installed
want=$(sha256sum pyproject.toml | cut -c1-16)
if [[ ! -x .venv/bin/python || "$(cat "$stamp" 2>/dev/null)" != "$want" ]]; then
  say "creating .venv and installing crucible-ray"
  python3 -m venv .venv
  .venv/bin/pip install -q --upgrade pip
  .venv/bin/pip install -q -e '.[test]'
  echo "$want" > "$stamp"
fi

if [[ $(id -u) -eq 0 ]]; then
  if [[ "${1:-}" == "--test" ]]; then
    .venv/bin/crucible-ray setup  # the suite runs every image: all of them now
  else  # the quick start's first evaluation needs python; the rest builds in the background
    .venv/bin/crucible-ray setup --now python
  fi
else
  say "not root: skipping engine setup; run 'sudo .venv/bin/crucible-ray setup' once"
fi
