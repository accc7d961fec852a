#!/usr/bin/env bash
# The real engines that tests and benchmarks talk to (see ENGINES.md in the team's shared notes):
# Debian packages, a dockerd with BuildKit on /tmp/wharf-dockerd/docker.sock and a Podman API
# service on /tmp/wharf-podman.sock, each in temp dirs.
#
# Sourced by scripts/test.sh, or used as a command (bench/run.ts does):
#   bash scripts/engines.sh packages                 install missing Debian packages
#   bash scripts/engines.sh start docker podman      start (or reuse) engines; prints NAME=value exports
#   bash scripts/engines.sh stop docker podman       release them; stops what no one else uses
#   bash scripts/engines.sh status
#
# Several people (and their test runs) share one machine, so an engine is shared too: a healthy
# engine already answering on the socket is reused, every user holds a lease (a file named after
# its pid), and an engine is stopped only when the last lease is gone and a wharf script started
# it. An engine someone started by hand is never stopped.

WHARF_DEBIAN_PACKAGES=(
  docker.io podman runc catatonit uidmap bubblewrap
  openssh-server openssh-client
  chromium fonts-liberation
  busybox-static curl ca-certificates xz-utils git
  mmdebstrap docker-compose
  vim less
  # The driver matrix's workspace image is made from these (test/support/workspace-images.ts).
  procps wget
)

# The paths are fixed by the team's conventions; overriding them is only for trying this script
# beside engines that are already running.
WHARF_DOCKERD_DIR=${WHARF_DOCKERD_DIR:-/tmp/wharf-dockerd}
WHARF_DOCKER_SOCK=$WHARF_DOCKERD_DIR/docker.sock
WHARF_PODMAN_SOCK=${WHARF_PODMAN_SOCK:-/tmp/wharf-podman.sock}
WHARF_PODMAN_DIR=${WHARF_PODMAN_DIR:-/tmp/wharf-podman}
WHARF_CHROMIUM=/usr/bin/chromium
# Seconds to wait for an engine to answer /_ping.
WHARF_ENGINE_TIMEOUT=${WHARF_ENGINE_TIMEOUT:-120}

wharf_say() { printf '[wharf] %s\n' "$*" >&2; }

wharf_missing_packages() {
  local pkg
  for pkg in "${WHARF_DEBIAN_PACKAGES[@]}"; do
    dpkg-query -W -f='${db:Status-Abbrev}' "$pkg" 2>/dev/null | grep -q '^ii' || printf '%s\n' "$pkg"
  done
}

wharf_install_packages() {
  local missing
  missing=$(wharf_missing_packages)
  if [ -z "$missing" ]; then
    wharf_say "Debian packages: all present"
    return 0
  fi
  # shellcheck disable=SC2086 # one package name per word
  set -- $missing
  if [ "$(id -u)" != 0 ]; then
    wharf_say "missing Debian packages: $* (run as root, or install them: apt-get install $*)"
    return 1
  fi
  wharf_say "installing Debian packages: $*"
  export DEBIAN_FRONTEND=noninteractive
  # Another apt run (or another engineer's test run) may hold the lock: wait for it.
  apt-get -o DPkg::Lock::Timeout=600 update -qq || { wharf_say "apt-get update failed"; return 1; }
  apt-get -o DPkg::Lock::Timeout=600 install -y -qq --no-install-recommends "$@" >/tmp/wharf-apt.log 2>&1 || {
    tail -n 30 /tmp/wharf-apt.log >&2
    wharf_say "apt-get install failed (full log: /tmp/wharf-apt.log)"
    return 1
  }
}

wharf_ping() {
  [ -S "$1" ] && [ "$(curl -s --max-time 5 --unix-socket "$1" http://localhost/_ping 2>/dev/null)" = OK ]
}

# A killed engine whose parent has gone may linger as a zombie until PID 1 reaps it: that is dead.
wharf_pid_alive() {
  [ -n "${1:-}" ] && kill -0 "$1" 2>/dev/null || return 1
  local state
  state=$(awk '{ print $3 }' "/proc/$1/stat" 2>/dev/null)
  [ -n "$state" ] && [ "$state" != Z ]
}

# wharf_wait_ping SOCKET PID NAME LOG: wait until SOCKET answers, failing early if PID dies.
wharf_wait_ping() {
  local sock=$1 pid=$2 name=$3 log=$4 waited=0
  until wharf_ping "$sock"; do
    if [ -n "$pid" ] && ! wharf_pid_alive "$pid"; then
      wharf_say "$name exited before answering on $sock; last lines of $log:"
      tail -n 30 "$log" >&2 2>/dev/null
      return 1
    fi
    if [ "$waited" -ge $((WHARF_ENGINE_TIMEOUT * 5)) ]; then
      wharf_say "$name did not answer GET /_ping on $sock within ${WHARF_ENGINE_TIMEOUT}s; last lines of $log:"
      tail -n 30 "$log" >&2 2>/dev/null
      return 1
    fi
    sleep 0.2
    waited=$((waited + 1))
  done
}

# Leases live in DIR/leases; dead holders are pruned.
wharf_take_lease() { mkdir -p "$1/leases" && : >"$1/leases/$WHARF_LEASE_PID"; }

wharf_live_leases() {
  local file count=0
  for file in "$1"/leases/*; do
    [ -e "$file" ] || continue
    if wharf_pid_alive "$(basename "$file")"; then count=$((count + 1)); else rm -f "$file"; fi
  done
  echo "$count"
}

# Serialise starting and stopping between concurrent test runs.
# Engines started while the lock is held must not inherit its descriptor (they would hold the
# lock for their whole life), hence the {WHARF_LOCK_FD}>&- on their command lines.
wharf_locked() {
  exec {WHARF_LOCK_FD}>/tmp/wharf-engines.lock
  flock -w 600 "$WHARF_LOCK_FD" || { wharf_say "could not lock /tmp/wharf-engines.lock"; return 1; }
  "$@"
  local rc=$?
  exec {WHARF_LOCK_FD}>&-
  return $rc
}

# What a dockerd killed without a clean shutdown leaves behind makes the next one wait for a
# containerd that is gone ("timeout waiting for containerd to start"): its runtime state in the
# exec root, a containerd maybe still running, and mounts under the data root.
wharf_docker_clean_stale() {
  local containerd mount
  containerd=$(cat "$WHARF_DOCKERD_DIR/exec/containerd/containerd.pid" 2>/dev/null)
  if wharf_pid_alive "$containerd"; then
    kill -TERM "$containerd" 2>/dev/null
    sleep 1
    wharf_pid_alive "$containerd" && kill -KILL "$containerd" 2>/dev/null
  fi
  awk -v dir="$WHARF_DOCKERD_DIR/" 'index($2, dir) == 1 { print $2 }' /proc/mounts | sort -r | while read -r mount; do
    umount -l "$mount" 2>/dev/null
  done
  rm -rf "$WHARF_DOCKERD_DIR/exec"
  rm -f "$WHARF_DOCKER_SOCK" "$WHARF_DOCKERD_DIR/pid"
}

# dockerd's data in memory: the classic builder unpacks every context into its data root and
# deletes it after, and on ext4 each later unpack gets slower (ext4's inode allocator scans for
# recently deleted inodes; seen here going from 2 s to 13 s for the same 30,000-file context).
# Engines here are temporary anyway; when no tmpfs can be mounted, the disk is used.
wharf_docker_mount_root() {
  local root=$WHARF_DOCKERD_DIR/root
  mkdir -p "$root"
  awk -v dir="$root" '$2 == dir { found = 1 } END { exit !found }' /proc/mounts && return 0
  [ "$(id -u)" = 0 ] || return 0
  if mount -t tmpfs -o mode=0711 wharf-dockerd "$root" 2>/dev/null; then
    wharf_say "dockerd: data root on a tmpfs at $root"
  else
    wharf_say "dockerd: no tmpfs for the data root; using the disk"
  fi
}

wharf_docker_start_locked() {
  mkdir -p "$WHARF_DOCKERD_DIR"
  local log=$WHARF_DOCKERD_DIR/log pid
  if wharf_ping "$WHARF_DOCKER_SOCK"; then
    wharf_say "dockerd: reusing the engine on $WHARF_DOCKER_SOCK"
  else
    pid=$(cat "$WHARF_DOCKERD_DIR/pid" 2>/dev/null)
    if wharf_pid_alive "$pid"; then
      # Someone started it a moment ago and it is still coming up.
      wharf_say "dockerd: waiting for the engine starting as pid $pid"
      wharf_wait_ping "$WHARF_DOCKER_SOCK" "$pid" dockerd "$log" || return 1
    else
      command -v dockerd >/dev/null || { wharf_say "dockerd not found: install docker.io"; return 1; }
      wharf_docker_clean_stale
      wharf_docker_mount_root
      dockerd --host "unix://$WHARF_DOCKER_SOCK" \
        --data-root "$WHARF_DOCKERD_DIR/root" --exec-root "$WHARF_DOCKERD_DIR/exec" \
        --pidfile "$WHARF_DOCKERD_DIR/pid" --iptables=false --bridge=none \
        --storage-driver=vfs </dev/null >"$log" 2>&1 {WHARF_LOCK_FD}>&- &
      pid=$!
      echo "$pid" >"$WHARF_DOCKERD_DIR/managed"
      wharf_say "dockerd: started as pid $pid, waiting for $WHARF_DOCKER_SOCK"
      if ! wharf_wait_ping "$WHARF_DOCKER_SOCK" "$pid" dockerd "$log"; then
        kill "$pid" 2>/dev/null
        rm -f "$WHARF_DOCKERD_DIR/managed"
        return 1
      fi
    fi
  fi
  wharf_take_lease "$WHARF_DOCKERD_DIR"
}

wharf_write_podman_conf() {
  local conf=/etc/containers/containers.conf wanted
  # Without this, containers fail on these machines (setrlimit, then cgroups in hybrid mode).
  wanted='[containers]
default_ulimits = ["nofile=1024:1024", "nproc=4096:4096"]
[engine]
cgroup_manager = "cgroupfs"
runtime = "runc"
events_logger = "file"'
  [ "$(cat "$conf" 2>/dev/null)" = "$wanted" ] && return 0
  if [ "$(id -u)" != 0 ]; then
    wharf_say "podman needs $conf as ENGINES.md shows; run as root"
    return 1
  fi
  mkdir -p /etc/containers
  [ -e "$conf" ] && [ ! -e "$conf.wharf-backup" ] && cp "$conf" "$conf.wharf-backup"
  printf '%s\n' "$wanted" >"$conf"
  wharf_say "podman: wrote $conf"
}

wharf_podman_start_locked() {
  mkdir -p "$WHARF_PODMAN_DIR"
  local log=$WHARF_PODMAN_DIR/log pid
  wharf_write_podman_conf || return 1
  if wharf_ping "$WHARF_PODMAN_SOCK"; then
    wharf_say "podman: reusing the service on $WHARF_PODMAN_SOCK"
  else
    pid=$(cat "$WHARF_PODMAN_DIR/pid" 2>/dev/null)
    if wharf_pid_alive "$pid"; then
      wharf_say "podman: waiting for the service starting as pid $pid"
      wharf_wait_ping "$WHARF_PODMAN_SOCK" "$pid" podman "$log" || return 1
    else
      command -v podman >/dev/null || { wharf_say "podman not found: install podman"; return 1; }
      rm -f "$WHARF_PODMAN_SOCK"
      # From its own folder: conmon writes an empty "oom" file into its working directory when a
      # container is OOM-killed (the docker-driver tests do that on Podman), which was the checkout.
      (cd "$WHARF_PODMAN_DIR" && exec podman system service --time=0 "unix://$WHARF_PODMAN_SOCK") </dev/null >"$log" 2>&1 {WHARF_LOCK_FD}>&- &
      pid=$!
      echo "$pid" >"$WHARF_PODMAN_DIR/pid"
      echo "$pid" >"$WHARF_PODMAN_DIR/managed"
      wharf_say "podman: started as pid $pid, waiting for $WHARF_PODMAN_SOCK"
      if ! wharf_wait_ping "$WHARF_PODMAN_SOCK" "$pid" podman "$log"; then
        kill "$pid" 2>/dev/null
        rm -f "$WHARF_PODMAN_DIR/managed"
        return 1
      fi
    fi
  fi
  wharf_take_lease "$WHARF_PODMAN_DIR"
}

# wharf_release DIR NAME: drop our lease; stop the engine if we (any wharf script) started it
# and nobody else holds a lease.
wharf_release_locked() {
  local dir=$1 name=$2 pid waited=0
  rm -f "$dir/leases/$WHARF_LEASE_PID"
  [ -e "$dir/managed" ] || return 0
  if [ "$(wharf_live_leases "$dir")" -gt 0 ]; then
    wharf_say "$name: still used by another run, leaving it running"
    return 0
  fi
  pid=$(cat "$dir/managed")
  rm -f "$dir/managed"
  wharf_pid_alive "$pid" || return 0
  kill -TERM "$pid" 2>/dev/null
  # dockerd stops its containerd and containers first: give it time before insisting.
  while wharf_pid_alive "$pid" && [ "$waited" -lt 150 ]; do
    sleep 0.2
    waited=$((waited + 1))
  done
  if wharf_pid_alive "$pid"; then
    wharf_say "$name (pid $pid) ignored SIGTERM for 30s; killing it"
    kill -KILL "$pid" 2>/dev/null
  fi
  wharf_say "$name: stopped"
}

# Also gives back the tmpfs holding the data root once the engine we started has stopped.
wharf_docker_release_locked() {
  local managed=0
  [ -e "$WHARF_DOCKERD_DIR/managed" ] && managed=1
  wharf_release_locked "$WHARF_DOCKERD_DIR" dockerd || return 1
  if [ "$managed" = 1 ] && [ ! -e "$WHARF_DOCKERD_DIR/managed" ] && ! wharf_ping "$WHARF_DOCKER_SOCK"; then
    wharf_docker_clean_stale
  fi
  return 0
}

wharf_engine_start() {
  case $1 in
    docker)
      wharf_locked wharf_docker_start_locked || return 1
      export WHARF_TEST_DOCKER_HOST=unix://$WHARF_DOCKER_SOCK
      ;;
    podman)
      wharf_locked wharf_podman_start_locked || return 1
      export WHARF_TEST_PODMAN_HOST=unix://$WHARF_PODMAN_SOCK
      ;;
    chromium)
      [ -x "$WHARF_CHROMIUM" ] || { wharf_say "$WHARF_CHROMIUM not found: install chromium"; return 1; }
      export WHARF_TEST_CHROMIUM=$WHARF_CHROMIUM
      ;;
    *)
      wharf_say "unknown engine \"$1\" (docker, podman, chromium)"
      return 1
      ;;
  esac
}

wharf_engine_stop() {
  case $1 in
    docker) wharf_locked wharf_docker_release_locked ;;
    podman) wharf_locked wharf_release_locked "$WHARF_PODMAN_DIR" podman ;;
    chromium) ;;
    *) wharf_say "unknown engine \"$1\"" ;;
  esac
}

wharf_engines_main() {
  local command=${1:-}
  shift || true
  case $command in
    packages) wharf_install_packages ;;
    start)
      local engine
      for engine in "$@"; do
        wharf_engine_start "$engine" || return 1
      done
      env | grep '^WHARF_TEST_' || true
      ;;
    stop)
      local engine
      for engine in "$@"; do wharf_engine_stop "$engine"; done
      ;;
    status)
      wharf_ping "$WHARF_DOCKER_SOCK" && echo "docker: up on $WHARF_DOCKER_SOCK" || echo "docker: down"
      wharf_ping "$WHARF_PODMAN_SOCK" && echo "podman: up on $WHARF_PODMAN_SOCK" || echo "podman: down"
      ;;
    *)
      echo "usage: bash scripts/engines.sh packages | start ENGINE... | stop ENGINE... | status" >&2
      return 2
      ;;
  esac
}

# Whose lease this is: when sourced, the shell that sourced it (the test run); as a command, the
# process that called it (e.g. the benchmark runner), since this shell exits right away.
if [ "${BASH_SOURCE[0]}" = "$0" ]; then
  WHARF_LEASE_PID=${WHARF_LEASE_PID:-$PPID}
  wharf_engines_main "$@"
  exit $?
fi
WHARF_LEASE_PID=${WHARF_LEASE_PID:-$$}
