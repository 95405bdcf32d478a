#!/usr/bin/env bash
# Runs the unit tests (cmocka binaries in $BUILD/tests), then the integration tests and the
# simulators' own tests (pytest over tests/integration and tests/sim: the real binary, a real
# redis-server and the CRM simulators; pytest.ini puts the shared harness tests/cs/ on the
# module path), then prints counts.
# Usage: scripts/test.sh [unit|integration|all]   (BUILD, SANITIZE and PYTHON from make)
set -uo pipefail
BUILD=${BUILD:-build}
PYTHON=${PYTHON:-/usr/bin/python3}
what=${1:-all}
export CAMPAIGN_SYNC_BIN="$PWD/$BUILD/campaign-sync"

if [ -n "${SANITIZE:-}" ]; then
  # Stop at the first report; integration fixtures also fail on any report in stderr.
  export ASAN_OPTIONS="halt_on_error=1:abort_on_error=0:detect_leaks=1:exitcode=86"
  export UBSAN_OPTIONS="halt_on_error=1:print_stacktrace=1:exitcode=87"
  export LSAN_OPTIONS="suppressions=$PWD/tests/lsan.supp:print_suppressions=0"
  export CAMPAIGN_SYNC_SANITIZED=1
fi

unit_pass=0; unit_fail=0; failed_bins=()
if [ "$what" != integration ]; then
  for t in "$BUILD"/tests/test_*; do
    [ -x "$t" ] || continue
    out=$("$t" 2>&1); rc=$?
    p=$(grep -Eo '\[  PASSED  \] [0-9]+' <<<"$out" | awk '{s+=$4} END {print s+0}')
    f=$(grep -Eo '\[  FAILED  \] [0-9]+' <<<"$out" | awk '{s+=$4} END {print s+0}')
    unit_pass=$((unit_pass + p)); unit_fail=$((unit_fail + f))
    if [ $rc -ne 0 ]; then
      failed_bins+=("$(basename "$t")")
      [ "$f" -eq 0 ] && unit_fail=$((unit_fail + 1))
      echo "$out"
    fi
  done
  echo "unit: $unit_pass passed, $unit_fail failed"
fi

int_rc=0
if [ "$what" != unit ]; then
  # Two test processes (pytest-xdist): most tests wait on processes and simulators, so two
  # share the 2 cores well and the run takes ~60 % of the time (PYTEST_WORKERS=0: one process).
  workers=${PYTEST_WORKERS:-2}
  xdist=()
  [ "$workers" != 0 ] && "$PYTHON" -c "import xdist" 2>/dev/null && xdist=(-n "$workers")
  # The simulators' own tests run no service code: the sanitizer build has nothing to add there.
  dirs=(tests/integration)
  [ -z "${SANITIZE:-}" ] && dirs+=(tests/sim)
  # Tests that measure a pace over a minute of calls (marker `paced`, pytest.ini) run
  # unsanitized only.
  marks=()
  [ -n "${SANITIZE:-}" ] && marks=(-m "not paced")
  "$PYTHON" -m pytest -q -p no:cacheprovider "${xdist[@]}" "${marks[@]}" "${dirs[@]}" \
    ${PYTEST_ARGS:-} || int_rc=$?
fi

if [ "$what" != integration ] && [ ${#failed_bins[@]} -gt 0 ]; then
  echo "unit test binaries failing: ${failed_bins[*]}"
fi
[ $unit_fail -eq 0 ] && [ $int_rc -eq 0 ]
