# Shared by the examples' run.sh (sourced, not run). What a runnable example must get right:
#  - every child (redis-servers, the control plane, the proxy) stops when the script stops, on
#    Ctrl-C, on SIGTERM or SIGINT sent to the script's own PID, and when any child exits;
#  - a redis-server that cannot start is an error, and a port someone else already listens on is
#    refused before anything starts (traffic must never go to a stranger).
# MELTEMI_EXAMPLE_SKIP_SETUP=1 skips installing and building (the tests set it).

set -euo pipefail
MELTEMI_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$MELTEMI_ROOT"
node scripts/check-node.cjs

example_setup() {
  [ "${MELTEMI_EXAMPLE_SKIP_SETUP:-}" = 1 ] && return 0
  if ! command -v redis-server >/dev/null || ! command -v redis-cli >/dev/null; then
    if [ "$(id -u)" = 0 ]; then apt-get update && apt-get install -y redis-server redis-tools
    else sudo apt-get update && sudo apt-get install -y redis-server redis-tools; fi
  fi
  [ -d node_modules ] || npm ci
  npm run build
}

children=()
stop_children() {
  trap - EXIT INT TERM
  local p
  for p in "${children[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
}
trap stop_children EXIT
# bash runs a trap only between commands, so children run in the background and the script
# waits for them: a signal then interrupts the wait at once.
trap 'exit 130' INT
trap 'exit 143' TERM

port_in_use() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

require_free_ports() {
  local port
  for port in "$@"; do
    if port_in_use "$port"; then
      echo "example: 127.0.0.1:$port is already in use by another process; stop it first (nothing was started)" >&2
      exit 1
    fi
  done
}

# start_child NAME CMD...: runs CMD in the background as one of the children.
start_child() {
  local name="$1"; shift
  "$@" &
  children+=($!)
  eval "child_$name=$!"
}

# start_redis PORT: a throwaway redis-server on 127.0.0.1:PORT; fails unless it is ours that answers.
start_redis() {
  local port="$1" pid i
  start_child "redis_$port" redis-server --port "$port" --bind 127.0.0.1 --save '' --appendonly no --loglevel warning
  pid="${children[-1]}"
  for i in $(seq 1 100); do
    if ! kill -0 "$pid" 2>/dev/null; then
      echo "example: redis-server on 127.0.0.1:$port exited at start (see its log above)" >&2
      exit 1
    fi
    if redis-cli -p "$port" ping >/dev/null 2>&1; then return 0; fi
    sleep 0.05
  done
  echo "example: redis-server on 127.0.0.1:$port did not answer within 5 s" >&2
  exit 1
}

# wait_port PORT: until something accepts on 127.0.0.1:PORT (30 s), or a child exited.
wait_port() {
  local i p
  for i in $(seq 1 600); do
    port_in_use "$1" && return 0
    for p in "${children[@]}"; do
      if ! kill -0 "$p" 2>/dev/null; then echo "example: a process exited before 127.0.0.1:$1 opened (see its log above)" >&2; exit 1; fi
    done
    sleep 0.05
  done
  echo "example: nothing listens on 127.0.0.1:$1 after 30 s" >&2
  exit 1
}

# wait_children: returns when the first child exits, with its status (set -e then stops the rest).
wait_children() {
  local status=0
  wait -n "${children[@]}" || status=$?
  exit "$status"
}
