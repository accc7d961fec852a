#!/usr/bin/env bash
# `npm start`: the control server on the embedded default (process driver: no engine, no database).
# On a fresh machine it installs the npm dependencies first; every start builds what is missing or
# older than its sources (the agent bundle, the helper, the web UI: npm run build -- --if-stale).
# Arguments pass through to the server: npm start -- --port 9000 --data-dir /srv/wharf
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

if [ ! -x node_modules/.bin/tsx ]; then
  echo "[wharf] installing npm dependencies (npm ci)" >&2
  npm ci --no-audit --no-fund >&2
fi

# Workspaces run the built agent (dist/agent) and the helper's downloads are dist/wharf.cjs,
# wharf.mjs, wharf-linux-x64 and install.sh: the server never builds them itself. Quick when
# nothing changed.
node scripts/build.mjs --if-stale >&2 ||
  echo "[wharf] some artifacts did not build (see above); starting anyway (what is missing says so, and to run npm run build)" >&2

# glibc's malloc hands memory back to the system once 128 KiB at the top of its heap are free. A
# relayed tunnel's buffers (64 KiB each, freed ~32 MB at a time by V8's scavenges) then make it
# give back and fault in again every page that passes: ~60,000 page faults per 256 MiB relayed
# and 0.5 CPU-s per GB (docs/benchmarks.md, Tunnels). Keeping up to 64 MiB of free heap stops
# that. The server image sets the same (Dockerfile); a trim threshold of the caller's own wins.
case "${GLIBC_TUNABLES:-}" in
  *glibc.malloc.trim_threshold=*) ;;
  *) export GLIBC_TUNABLES="${GLIBC_TUNABLES:+$GLIBC_TUNABLES:}glibc.malloc.trim_threshold=67108864" ;;
esac

exec node --import tsx server/serve.ts "$@"
