#!/usr/bin/env bash
# Prepare a dedicated executor node (Debian 12, as root): the Docker engine, gVisor registered
# as crucible-runsc, the sandbox images, the sandbox code directory, and no way to cloud
# credentials. Used for executor VMs (cluster/aws/) and executor Kubernetes nodes
# (cluster/kuberay/). Idempotent; with --offline it installs nothing and fails on anything
# missing (executor subnets have no route out: build an image of a prepared node).
#
#   bootstrap-executor.sh [--ray-user USER] [--containerd] [--offline] [--src DIR]
#                         [--trusted-key FILE]... [--images DIR]
#     --ray-user USER     the user Ray runs as on a VM (AWS): docker group, owns the code dir
#     --containerd        also give containerd the runsc shim (the "gvisor" RuntimeClass)
#     --src DIR           crucible-ray source (default: this script's repository)
#     --trusted-key FILE  an image signing public key (.pub) executors trust (repeatable)
#     --images DIR        import the signed images `crucible-ray images export` wrote there
#                         instead of building them (the node never holds the signing key)
set -euo pipefail
say() { printf '[bootstrap-executor] %s\n' "$*" >&2; }
die() { say "$*"; exit 1; }

ray_user="" containerd=0 offline=0 images="" trusted_keys=()
src=$(cd "$(dirname "$0")/../.." && pwd)
while [[ $# -gt 0 ]]; do
  case "$1" in
    --ray-user) ray_user=$2; shift 2 ;;
    --containerd) containerd=1; shift ;;
    --offline) offline=1; shift ;;
    --src) src=$2; shift 2 ;;
    --trusted-key) trusted_keys+=("$2"); shift 2 ;;
    --images) images=$2; shift 2 ;;
    *) die "unknown option $1" ;;
  esac
done
[[ $(id -u) -eq 0 ]] || die "run as root"

# Executor pods reach the socket through this group (supplementalGroups in rayservice.yaml):
# pin its id before docker.io would create it with any free one.
DOCKER_GID=2375
# The uid of the Ray worker in executor pods (runAsUser in rayservice.yaml).
POD_UID=1000
getent group docker >/dev/null || groupadd --system --gid "$DOCKER_GID" docker
[[ $(getent group docker | cut -d: -f3) == "$DOCKER_GID" ]] \
  || say "warning: group docker is not gid $DOCKER_GID; set supplementalGroups to $(getent group docker | cut -d: -f3)"

missing=()
command -v dockerd >/dev/null || missing+=(docker.io)
command -v debootstrap >/dev/null || missing+=(debootstrap)
python3 -c 'import venv, ensurepip' 2>/dev/null || missing+=(python3-venv)
new_runsc() { command -v runsc >/dev/null && [[ ! "$(runsc --version | head -1)" < "runsc version 0.0~2024" ]]; }
if [[ ${#missing[@]} -gt 0 ]] || ! new_runsc; then
  [[ $offline -eq 0 ]] || die "missing: ${missing[*]} runsc>=2024 (and --offline)"
  say "installing ${missing[*]} runsc"
  grep -rqs bookworm-backports /etc/apt/sources.list /etc/apt/sources.list.d/ \
    || echo "deb http://deb.debian.org/debian bookworm-backports main" \
      > /etc/apt/sources.list.d/crucible-backports.list
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  [[ ${#missing[@]} -eq 0 ]] || apt-get install -y -qq "${missing[@]}"
  apt-get install -y -qq -t bookworm-backports runsc
fi

# crucible-ray itself, for `crucible-ray setup` (runtime registration, images).
venv=/opt/crucible-ray/.venv
if [[ ! -x $venv/bin/crucible-ray ]]; then
  [[ $offline -eq 0 ]] || die "crucible-ray is not installed in $venv (and --offline)"
  python3 -m venv "$venv" && "$venv/bin/pip" install -q -e "$src"
fi
# Executors run only images signed by a trusted key. With trusted keys given, setup makes no
# key of its own, so whatever this node built itself would be refused: import the signed ones.
for key in "${trusted_keys[@]}"; do
  install -D -m 0644 "$key" "/var/lib/crucible/keys/trusted/$(basename "$key")"
done
if [[ -n $images ]]; then
  "$venv/bin/crucible-ray" setup --no-images  # the engine, to load the Docker images into
  "$venv/bin/crucible-ray" images import "$images"/*.tar
fi
# Registers crucible-runsc (--network=none --oci-seccomp), starts dockerd, builds the images
# that are missing (debootstrap from the Debian mirror: not possible --offline, where they must
# already be, or be imported with --images).
"$venv/bin/crucible-ray" setup
"$venv/bin/crucible-ray" doctor

# Per-owner sandbox state (the ledgers the orphan sweep reads): written by the executor (pod
# uid 1000 or the VM's Ray user), kept on the node so a restarted actor finds what it left.
owner=${ray_user:-$POD_UID}
install -d -m 0711 -o "$owner" /var/lib/crucible/sandboxes
[[ -z $ray_user ]] || usermod -aG docker "$ray_user"

# Only root may reach the instance metadata service (the Ray user and pods may not), so a
# compromised executor learns nothing from it even where an instance role was attached.
if ! iptables -C OUTPUT -d 169.254.169.254/32 -m owner ! --uid-owner 0 -j REJECT 2>/dev/null; then
  iptables -I OUTPUT -d 169.254.169.254/32 -m owner ! --uid-owner 0 -j REJECT
fi
iptables -C DOCKER-USER -d 169.254.169.254/32 -j REJECT 2>/dev/null \
  || iptables -I DOCKER-USER -d 169.254.169.254/32 -j REJECT 2>/dev/null || true

if [[ $containerd -eq 0 ]]; then exit 0; fi
# containerd's runsc shim for the "gvisor" RuntimeClass (runsc from backports ships it).
command -v containerd-shim-runsc-v1 >/dev/null || die "containerd-shim-runsc-v1 is missing"
conf=/etc/containerd/config.toml
if ! grep -qs 'runtimes.runsc' "$conf"; then
  cat >> "$conf" <<'TOML'

[plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runsc]
  runtime_type = "io.containerd.runsc.v1"
TOML
  systemctl restart containerd
fi
