#!/usr/bin/env bash
# Lints openapi/openapi.yaml with Redocly CLI (the `recommended` ruleset, exceptions with
# their reasons in openapi/redocly.yaml). Exits non-zero when the description has errors.
# Needs Node.js and npm (the pinned CLI is fetched from the npm registry by npx).
# Usage: scripts/openapi-lint.sh [extra `redocly lint` options]
set -euo pipefail
cd "$(dirname "$0")/.."

# Pinned: a 1.x release whose dependencies all resolve from the registry.
REDOCLY_CLI_VERSION=${REDOCLY_CLI_VERSION:-1.34.20}

command -v npx >/dev/null || { echo "openapi-lint: npx not found (install Node.js and npm)" >&2; exit 2; }

exec npx --yes "@redocly/cli@${REDOCLY_CLI_VERSION}" lint \
  --config openapi/redocly.yaml --format=stylish "$@" openapi/openapi.yaml
