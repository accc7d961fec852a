#!/bin/sh
# wharf deploy runner. Runs inside the build (the last RUN step of the generated Dockerfile) and
# needs only a POSIX sh, mkfifo, mktemp and cat (plus curl or wget when there are variables).
#
# It runs the commands in /okteto/wharf/commands/1, 2, ... one after another with bash (or sh),
# in /okteto/src, and stops at the first failure with that command's exit code. Every line it
# prints starts with "@@<nonce> " so the server can tell its structured lines from anything else
# the builder prints:
#   @@<nonce> start <i> <uptime>      command i begins (uptime in seconds, from /proc/uptime)
#   @@<nonce> <i> o <text>            a line command i wrote to stdout (on the RUN's stdout)
#   @@<nonce> <i> e <text>            a line command i wrote to stderr (on the RUN's stderr)
#   @@<nonce> end <i> <code> <uptime> command i ended with that exit code
#   @@<nonce> fatal <message>         the runner itself cannot go on
#
# Variables never travel in the build context or the Dockerfile: they are fetched once, at run
# time, from a single-use URL, kept in a private temporary folder and removed before the step
# ends, so they are in no image layer and in no build cache.
set -u
W=/okteto/wharf
. "$W/run.env"
# The nonce and the variables URL are build arguments (they change every run, files do not);
# the commands get neither.
P="@@${WHARF_NONCE:?the build argument WHARF_NONCE is missing}"
secrets_url=${WHARF_SECRETS_URL:-}
unset WHARF_NONCE WHARF_SECRETS_URL WHARF_RUN_ID

tmp=$(mktemp -d 2>/dev/null) || { tmp=/tmp/wharf-runner.$$; mkdir -m 700 "$tmp"; }
chmod 700 "$tmp"
cleanup() { rm -rf "$tmp"; }
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

if [ -n "$secrets_url" ]; then
  if command -v curl >/dev/null 2>&1; then
    curl -fsS -o "$tmp/secrets.sh" "$secrets_url" 2>"$tmp/fetch.err"
  elif command -v wget >/dev/null 2>&1; then
    wget -q -O "$tmp/secrets.sh" "$secrets_url" 2>"$tmp/fetch.err"
  else
    echo "$P fatal the runner image has neither curl nor wget to fetch the deploy variables"
    exit 125
  fi
  if [ $? -ne 0 ]; then
    echo "$P fatal cannot fetch the deploy variables from the wharf server: $(head -c 300 "$tmp/fetch.err" | tr '\n' ' ')"
    exit 125
  fi
  WHARF_SECRETS_DIR="$tmp"
  . "$tmp/secrets.sh"
  rm -f "$tmp/secrets.sh" "$tmp/fetch.err"
fi

if command -v bash >/dev/null 2>&1; then run_shell=bash; else run_shell=sh; fi

# Command durations are measured here, not from when the builder relays the lines.
uptime_now() {
  if [ -r /proc/uptime ]; then read -r up _ </proc/uptime; echo "$up"; else echo 0; fi
}

# Prefixes each line of its input; awk flushes per line so output streams live.
prefix() {
  if command -v awk >/dev/null 2>&1; then
    awk -v p="$P $1 $2 " '{ print p $0; fflush() }'
  else
    while IFS= read -r line || [ -n "$line" ]; do printf '%s%s\n' "$P $1 $2 " "$line"; done
  fi
}

cd /okteto/src || { echo "$P fatal /okteto/src is missing"; exit 125; }
i=1
while [ "$i" -le "$WHARF_COMMAND_COUNT" ]; do
  rm -f "$tmp/o" "$tmp/e"
  mkfifo "$tmp/o" "$tmp/e" || { echo "$P fatal mkfifo failed"; exit 125; }
  echo "$P start $i $(uptime_now)"
  prefix "$i" o <"$tmp/o" &
  out_pid=$!
  prefix "$i" e <"$tmp/e" >&2 &
  err_pid=$!
  "$run_shell" -c "$(cat "$W/commands/$i")" >"$tmp/o" 2>"$tmp/e" </dev/null
  code=$?
  wait "$out_pid" "$err_pid"
  echo "$P end $i $code $(uptime_now)"
  if [ "$code" -ne 0 ]; then exit "$code"; fi
  i=$((i + 1))
done
exit 0
