#!/usr/bin/env bash
# Runs each libFuzzer target for FUZZ_SECONDS, seeded from tests/data/ (the fixtures and our
# own cases), with a fresh working corpus under build/fuzz/. A finding fails the run and
# leaves the crashing input in build/fuzz/.
set -euo pipefail
secs=${FUZZ_SECONDS:-60}
for bin in "$@"; do
  name=$(basename "$bin")
  corpus=build/fuzz/corpus-$name
  mkdir -p "$corpus"
  case "$name" in
    fuzz_sf_outbound) seeds=tests/data/salesforce ;;
    fuzz_mkto_webhook) seeds=tests/data/marketo ;;
    fuzz_mapping) seeds=tests/data/mappings ;;
    *) seeds=tests/data ;;
  esac
  echo "fuzz: $name for ${secs}s (seeds: $seeds)"
  log=build/fuzz/$name.log
  rc=0
  "$bin" -max_total_time="$secs" -max_len=131072 -timeout=10 -rss_limit_mb=2048 \
    -artifact_prefix=build/fuzz/"$name"- -print_final_stats=1 "$corpus" "$seeds" >"$log" 2>&1 || rc=$?
  grep -E "^(stat::number_of_executed_units|stat::peak_rss_mb)" "$log" || true
  if [ $rc -ne 0 ]; then
    tail -n 60 "$log"
    echo "fuzz: $name found a problem (exit $rc); input saved under build/fuzz/$name-*"
    exit 1
  fi
done
