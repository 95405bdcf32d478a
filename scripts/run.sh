#!/usr/bin/env bash
# `make run`: starts a local redis-server when nothing answers at REDIS_URL and, when no CRM
# credentials are set, the bundled Salesforce and Marketo simulators with the service wired
# to them; then runs `campaign-sync serve` in the foreground. Ctrl-C stops everything.
# In demo mode the shared secrets (Marketo webhook secret, admin token, the Salesforce
# endpoint URL's token) are generated afresh, 64 hex digits each, unless set.
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD=${BUILD:-build}
RUN_DIR=${RUN_DIR:-$PWD/.run}
mkdir -p "$RUN_DIR"
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; }
trap cleanup EXIT INT TERM

export REDIS_URL=${REDIS_URL:-redis://127.0.0.1:6379/0}
hostport=${REDIS_URL#redis://}; hostport=${hostport#*@}; hostport=${hostport%%/*}
rhost=${hostport%%:*}; rport=${hostport##*:}; [ "$rport" = "$hostport" ] && rport=6379
if ! redis-cli -h "$rhost" -p "$rport" ping >/dev/null 2>&1; then
  echo "run: starting redis-server on $rhost:$rport (data in $RUN_DIR/redis, AOF always)"
  mkdir -p "$RUN_DIR/redis"
  redis-server --bind "$rhost" --port "$rport" --dir "$RUN_DIR/redis" --appendonly yes \
    --appendfsync always --save "" --logfile "$RUN_DIR/redis/log" &
  pids+=($!)
  for _ in $(seq 50); do redis-cli -h "$rhost" -p "$rport" ping >/dev/null 2>&1 && break; sleep 0.1; done
fi

export PORT=${PORT:-8080}
export SPOOL_DIR=${SPOOL_DIR:-$RUN_DIR/spool}
# 32 random bytes as hex: the service refuses secrets shorter than 32 bytes.
secret() { openssl rand -hex 32 2>/dev/null || od -An -tx1 -N32 /dev/urandom | tr -d ' \n'; }
if [ -z "${SF_CLIENT_ID:-}" ] && [ -z "${MARKETO_CLIENT_ID:-}" ] && [ -f tests/sim/salesforce_sim.py ]; then
  # Demo mode: both CRMs are the bundled simulators.
  SF_SIM_PORT=${SF_SIM_PORT:-8091}; MKTO_SIM_PORT=${MKTO_SIM_PORT:-8092}
  export SF_ORG_ID=00D000000000001AAA SF_INTEGRATION_USER_ID=005000000000001AAA
  export SF_LOGIN_URL=http://127.0.0.1:$SF_SIM_PORT SF_CLIENT_ID=sim-sf-client SF_CLIENT_SECRET=sim-sf-secret
  export MARKETO_BASE_URL=http://127.0.0.1:$MKTO_SIM_PORT MARKETO_CLIENT_ID=sim-mkto-client
  export MARKETO_CLIENT_SECRET=sim-mkto-secret
  export MARKETO_WEBHOOK_SECRET=${MARKETO_WEBHOOK_SECRET:-$(secret)}
  export ADMIN_TOKEN=${ADMIN_TOKEN:-$(secret)}
  export SF_WEBHOOK_TOKEN=${SF_WEBHOOK_TOKEN:-$(secret)}
  /usr/bin/python3 tests/sim/salesforce_sim.py --port "$SF_SIM_PORT" \
    --outbound-url "http://127.0.0.1:$PORT/webhooks/salesforce/$SF_WEBHOOK_TOKEN" \
    >"$RUN_DIR/sf-sim.out" 2>&1 &
  pids+=($!)
  /usr/bin/python3 tests/sim/marketo_sim.py --port "$MKTO_SIM_PORT" \
    --webhook-url "http://127.0.0.1:$PORT/webhooks/marketo" \
    --webhook-secret "$MARKETO_WEBHOOK_SECRET" >"$RUN_DIR/mkto-sim.out" 2>&1 &
  pids+=($!)
  for port in "$SF_SIM_PORT" "$MKTO_SIM_PORT"; do
    for _ in $(seq 50); do curl -s -o /dev/null "127.0.0.1:$port/_sim/config" && break; sleep 0.1; done
  done
  echo "run: Salesforce simulator on :$SF_SIM_PORT, Marketo simulator on :$MKTO_SIM_PORT"
  [ -x scripts/demo.sh ] && (sleep 1 && scripts/demo.sh) &
fi

echo "run: campaign-sync serve on :$PORT (LOG_FORMAT=${LOG_FORMAT:=text})"
if [ -n "${SF_WEBHOOK_TOKEN:-}" ]; then
  echo "run: Salesforce Outbound Message endpoint URL: http://127.0.0.1:$PORT/webhooks/salesforce/$SF_WEBHOOK_TOKEN"
fi
if [ -n "${ADMIN_TOKEN:-}" ]; then
  scheme=http; [ -n "${TLS_CERT_FILE:-}" ] && scheme=https
  # The demo's own token is shown; a token of your own is not printed.
  [ "${SF_CLIENT_ID:-}" = sim-sf-client ] && shown="token: $ADMIN_TOKEN" || shown="token: \$ADMIN_TOKEN"
  echo "run: operator console $scheme://localhost:$PORT/console/ ($shown)"
fi
export LOG_FORMAT
"$BUILD/campaign-sync" serve &
pids+=($!)
wait "${pids[-1]}"
