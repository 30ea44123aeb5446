#!/usr/bin/env bash
# Sets up and runs the bundled example: installs redis-server (Debian) and the npm packages if
# missing, builds meltemi and its plugins, starts two redis-servers on 127.0.0.1:7001 and :7002,
# and runs meltemi on 127.0.0.1:6380 (admin on :9901). Ctrl-C (or SIGTERM) stops everything.
source "$(dirname "$0")/../lib.sh"
example_setup
require_free_ports 7001 7002 6380 9901
start_redis 7001
start_redis 7002
start_child proxy node bin/meltemi.js run --config examples/redis-prefix-routing/meltemi.yaml
wait_port 6380
cat <<'MSG'
meltemi: try it from another terminal:
  redis-cli -p 6380 set cache:greeting hello     # lands on 127.0.0.1:7002
  redis-cli -p 6380 set user:1 ana               # lands on 127.0.0.1:7001
  redis-cli -p 7002 keys '*'                     # see where keys went
  curl -s 127.0.0.1:9901/metrics | grep meltemi_requests_total
MSG
wait_children
