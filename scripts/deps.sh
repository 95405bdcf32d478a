#!/usr/bin/env bash
# Installs the Debian packages that building, running and testing campaign-sync need,
# only when some are missing, so `make run` and `make test` work on a fresh machine.
# Usage: scripts/deps.sh [build|run|test|bench|all]   (default: all)
set -euo pipefail

# Compiling only (also what docker/Dockerfile's build stage installs).
build_pkgs=(build-essential pkg-config libmicrohttpd-dev libcurl4-openssl-dev libcjson-dev
            libhiredis-dev libxml2-dev libssl-dev libgnutls28-dev)
# `make run`: a local Redis, the simulators (Python) and curl for the demo.
run_pkgs=(redis-server python3 curl tzdata)
# chromium, chromium-driver and python3-selenium: the console's browser test (test_console.py).
test_pkgs=(libcmocka-dev python3 python3-pytest python3-pytest-xdist python3-yaml python3-jsonschema prometheus
           clang libclang-rt-14-dev procps curl openssl
           chromium chromium-driver python3-selenium)
# Node.js and npm run the real CRM clients (jsforce, node-marketo-rest) that
# tests/sim/test_sim_real_clients.py installs from tests/sim/clients/package-lock.json.
# A machine that has both commands already keeps them (NodeSource's nodejs bundles npm and
# conflicts with Debian's npm package); otherwise Debian's nodejs and npm are installed.
if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
  test_pkgs+=(nodejs npm)
fi
# `make bench`: load generator and Redis's own benchmark (the ceilings).
bench_pkgs=(wrk redis-tools)

case "${1:-all}" in
  build) want=("${build_pkgs[@]}") ;;
  run) want=("${build_pkgs[@]}" "${run_pkgs[@]}") ;;
  test) want=("${build_pkgs[@]}" "${run_pkgs[@]}" "${test_pkgs[@]}") ;;
  bench) want=("${build_pkgs[@]}" "${run_pkgs[@]}" "${bench_pkgs[@]}") ;;
  all) want=("${build_pkgs[@]}" "${run_pkgs[@]}" "${test_pkgs[@]}" "${bench_pkgs[@]}") ;;
  *) echo "usage: $0 [build|run|test|bench|all]" >&2; exit 2 ;;
esac

missing=()
for p in "${want[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0

echo "deps: installing ${missing[*]}" >&2
SUDO=""
[ "$(id -u)" -ne 0 ] && SUDO="sudo"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
