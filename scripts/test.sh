#!/usr/bin/env bash
# `npm test`: everything the tests need, then the tests. Works on a fresh Debian bookworm machine
# (as root) and is quick when things are already installed or running.
#
#   npm test                        install, build (if stale), start engines, lint, typecheck, all vitest projects
#   npm test -- test/cli.test.ts    the same set-up, then only what vitest selects (no lint)
#
# Exit status: the tests' own, or 1 when lint or typecheck failed.
set -uo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.." || exit 1
export PATH="$PWD/node_modules/.bin:$PATH"
# shellcheck source=scripts/engines.sh
source scripts/engines.sh

PHASES=()
STARTED_ENGINES=()

now() { date +%s.%N; }

# run_phase NAME COMMAND...: runs a step and records how long it took and whether it passed.
run_phase() {
  local name=$1 started rc elapsed
  shift
  printf '\n[wharf] ── %s\n' "$name" >&2
  started=$(now)
  "$@"
  rc=$?
  elapsed=$(awk -v a="$started" -v b="$(now)" 'BEGIN { printf "%.1f", b - a }')
  PHASES+=("$(printf '%-12s %7ss  %s' "$name" "$elapsed" "$([ $rc -eq 0 ] && echo ok || echo "FAILED ($rc)")")")
  printf '[wharf] %s: %ss%s\n' "$name" "$elapsed" "$([ $rc -eq 0 ] || echo " — failed ($rc)")" >&2
  return $rc
}

print_phases() {
  printf '\n[wharf] phase        time  result\n' >&2
  local line
  for line in "${PHASES[@]}"; do printf '[wharf] %s\n' "$line" >&2; done
}

stop_engines() {
  local engine
  for engine in "${STARTED_ENGINES[@]}"; do wharf_engine_stop "$engine"; done
  STARTED_ENGINES=()
}
VITEST_PID=
# On Ctrl-C or TERM: stop vitest (timeout passes the signal on to it), then the EXIT trap
# releases the engines.
interrupted() {
  if [ -n "$VITEST_PID" ]; then
    kill -TERM "$VITEST_PID" 2>/dev/null
    wait "$VITEST_PID" 2>/dev/null
  fi
  exit "$1"
}
trap stop_engines EXIT
trap 'interrupted 130' INT
trap 'interrupted 143' TERM

install_node_modules() {
  # npm writes node_modules/.package-lock.json on every install: a lockfile newer than it (a pull
  # that added a dependency) means the install is stale.
  if [ -x node_modules/.bin/vitest ] && [ -x node_modules/.bin/eslint ] && [ -x node_modules/.bin/tsc ] \
    && [ node_modules/.package-lock.json -nt package-lock.json ]; then
    echo "[wharf] node_modules: present" >&2
    return 0
  fi
  npm ci --no-audit --no-fund
}

start_engines() {
  local engine
  for engine in docker podman chromium; do
    wharf_engine_start "$engine" || return 1
    STARTED_ENGINES+=("$engine")
  done
  # Root runs sshd for the OpenSSH interoperability tests; sshd wants this directory.
  [ "$(id -u)" != 0 ] || mkdir -p /run/sshd
  printf '[wharf] %s\n' "WHARF_TEST_DOCKER_HOST=$WHARF_TEST_DOCKER_HOST" \
    "WHARF_TEST_PODMAN_HOST=$WHARF_TEST_PODMAN_HOST" "WHARF_TEST_CHROMIUM=$WHARF_TEST_CHROMIUM" >&2
}

RESULTS_FILE=$(mktemp /tmp/wharf-vitest-XXXXXX.json)

# A test blocked in synchronous code escapes vitest's own timeouts; this bound keeps a hung run
# from eating CI's whole budget (CI allows 90 minutes; the suite should take well under 20).
VITEST_LIMIT_SECONDS=${WHARF_TEST_LIMIT_SECONDS:-2400}

run_vitest() {
  # In the background so that Ctrl-C reaches this script's trap while vitest runs (timeout puts
  # vitest in a process group of its own, away from the terminal's signals).
  timeout -k 30 "$VITEST_LIMIT_SECONDS" vitest run --reporter=default --reporter=json --outputFile.json="$RESULTS_FILE" "$@" &
  VITEST_PID=$!
  wait "$VITEST_PID"
  local rc=$?
  VITEST_PID=
  if [ $rc -eq 124 ] || [ $rc -eq 137 ]; then
    echo "[wharf] vitest did not finish within ${VITEST_LIMIT_SECONDS}s and was stopped: a test hangs (set WHARF_TEST_LIMIT_SECONDS to change the limit)" >&2
  fi
  return $rc
}

# One plain closing line that any CI log reader understands: "vitest: N passed, N failed".
print_summary() {
  node -e '
    const fs = require("node:fs");
    let r;
    try { r = JSON.parse(fs.readFileSync(process.argv[1], "utf8")); } catch { r = undefined; }
    if (!r || typeof r.numTotalTests !== "number") { console.log("vitest: no test results (vitest did not finish)"); process.exit(0); }
    const skipped = (r.numPendingTests || 0) + (r.numTodoTests || 0);
    console.log(`vitest: ${r.numPassedTests} passed, ${r.numFailedTests} failed` + (skipped ? `, ${skipped} skipped` : ""));
  ' "$RESULTS_FILE"
  rm -f "$RESULTS_FILE"
}

setup_failed() {
  print_phases
  echo "[wharf] set-up failed: tests not run" >&2
  exit 1
}

run_phase npm-deps install_node_modules || setup_failed
# The servers under test run agents from dist/agent and serve the helper's downloads from dist/
# (vitest's globalSetup builds them again if a source changes); the web UI is for the browser tests.
run_phase build node scripts/build.mjs --if-stale || setup_failed
run_phase debian wharf_install_packages || setup_failed
run_phase engines start_engines || setup_failed

status=0
if [ $# -eq 0 ]; then
  run_phase lint eslint . || status=1
  run_phase typecheck tsc --noEmit || status=1
else
  echo "[wharf] arguments given: lint and typecheck skipped, vitest runs with: $*" >&2
fi
run_phase vitest run_vitest "$@"
tests_rc=$?

run_phase stop-engines stop_engines
print_phases
print_summary

if [ $tests_rc -ne 0 ]; then exit $tests_rc; fi
exit $status
