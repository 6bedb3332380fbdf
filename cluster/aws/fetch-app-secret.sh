#!/usr/bin/env bash
# Head and ingress nodes only: write the service's secrets (a JSON object of CRUCIBLE_*
# variables in AWS Secrets Manager, readable by the crucible-head and crucible-ingress
# instance profiles alone) to
# /etc/crucible/env, 0640 root:SSH user, read by `ray start`. Executors never get them.
set -euo pipefail
secret_id=${1:?usage: fetch-app-secret.sh SECRET_ID}
command -v aws >/dev/null || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq awscli; }
install -d -m 0750 /etc/crucible
tmp=$(mktemp /etc/crucible/env.XXXXXX)
aws secretsmanager get-secret-value --secret-id "$secret_id" --query SecretString --output text \
  | python3 -c 'import json, shlex, sys
for key, value in json.load(sys.stdin).items():
    if not key.startswith("CRUCIBLE_"):
        sys.exit(f"unexpected key {key!r} in the secret")
    print(f"{key}={shlex.quote(value)}")' > "$tmp"
chown "root:${SUDO_GID:-0}" "$tmp" && chmod 0640 "$tmp"
mv "$tmp" /etc/crucible/env
