#!/usr/bin/env bash
# Sets up and runs the bundled example: installs redis-server (Debian) and the npm packages if
# missing, builds meltemi and its plugins, starts two redis-servers on 127.0.0.1:7001 and :7002,
# and runs meltemi on 127.0.0.1:6380 (admin on :9901). Ctrl-C stops everything.
set -euo pipefail
cd "$(dirname "$0")/../.."

if ! command -v redis-server >/dev/null; then
  if [ "$(id -u)" = 0 ]; then apt-get update && apt-get install -y redis-server redis-tools
  else sudo apt-get update && sudo apt-get install -y redis-server redis-tools; fi
fi
[ -d node_modules ] || npm ci
npm run build

pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; }
trap cleanup EXIT INT TERM
for port in 7001 7002; do
  redis-server --port "$port" --bind 127.0.0.1 --save '' --appendonly no >/dev/null &
  pids+=($!)
done

cat <<'MSG'
meltemi: try it from another terminal:
  redis-cli -p 6380 set cache:greeting hello     # lands on 127.0.0.1:7002
  redis-cli -p 6380 set user:1 ana               # lands on 127.0.0.1:7001
  redis-cli -p 7002 keys '*'                     # see where keys went
  curl -s 127.0.0.1:9901/metrics | grep meltemi_requests_total
MSG
node bin/meltemi.js run --config examples/redis-prefix-routing/meltemi.yaml
