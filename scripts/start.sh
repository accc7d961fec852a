#!/usr/bin/env bash
# `npm start`: the control server on the embedded default (process driver: no engine, no database).
# On a fresh machine it installs the npm dependencies and builds the web UI first.
# Arguments pass through to the server: npm start -- --port 9000 --data-dir /srv/wharf
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

if [ ! -x node_modules/.bin/tsx ]; then
  echo "[wharf] installing npm dependencies (npm ci)" >&2
  npm ci --no-audit --no-fund >&2
fi

if [ ! -d web/dist ] && compgen -G 'web/vite.config.*' >/dev/null; then
  echo "[wharf] building the web UI (npm run build)" >&2
  npm run build >&2 || echo "[wharf] the web UI did not build (see above); starting without it" >&2
fi

exec node --import tsx server/serve.ts "$@"
