#!/usr/bin/env bash
# The whole test suite: prepare the machine (engine, gVisor, images), lint, then pytest.
# With CI=true a missing engine, runtime or image fails the run instead of skipping.
#
# CRUCIBLE_TEST_PARALLEL=1 runs the suite as two pytest processes at once, each with its own
# ports, database and Ray cluster: the packages that drive a cluster over Ray and HTTP (mostly
# waiting on it), and the sandbox-level packages (mostly gVisor CPU); arguments go to both.
# Not the default: on 2 cores the sandbox group's load can keep a Ray node that a cluster test
# adds from registering in time (a 30 s startup deadline), and every later cluster test then
# fails. Naming test paths runs just those, in one process.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/bootstrap.sh --test
.venv/bin/ruff check crucible_ray tests benchmarks seccomp examples cluster
.venv/bin/ruff format --check crucible_ray tests benchmarks seccomp examples cluster

for arg in "$@"; do
  if [[ "$arg" == tests* ]]; then exec .venv/bin/pytest "$@"; fi
done
if [[ "${CRUCIBLE_TEST_PARALLEL:-}" != 1 ]]; then exec .venv/bin/pytest "$@"; fi

CLUSTER_TESTS=(tests/api tests/client tests/batch tests/execution tests/faults tests/monitoring
               tests/outage tests/queue_api tests/test_cli.py tests/test_cluster_up.py)
ignored=()
for path in "${CLUSTER_TESTS[@]}"; do ignored+=("--ignore=$path"); done
base=${CRUCIBLE_TEST_PORT_OFFSET:-200}
logs=$(mktemp -d)
run_group() {  # name, port offset, pytest arguments...
  local name=$1 offset=$2; shift 2
  ( set +e
    CRUCIBLE_TEST_PORT_OFFSET=$offset .venv/bin/pytest --basetemp="$logs/$name-tmp" "$@" \
      > "$logs/$name.log" 2>&1
    echo $? > "$logs/$name.rc" ) &
}
run_group cluster "$base" "$@" "${CLUSTER_TESTS[@]}"
run_group sandbox "$((base + 100))" "$@" tests "${ignored[@]}"
wait
status=0
for name in sandbox cluster; do
  printf '\n\033[1m==== %s tests ====\033[0m\n' "$name"
  cat "$logs/$name.log"
  rc=$(cat "$logs/$name.rc")
  if [[ "$rc" != 0 ]]; then status=1; fi
done
rm -rf "$logs"
exit "$status"
