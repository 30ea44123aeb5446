#!/usr/bin/env bash
# The control-plane example: `meltemi control-plane` on 127.0.0.1:15010 serves routes and
# clusters built from ./resources to a proxy on 127.0.0.1:6381 (admin :9902) in front of two
# redis-servers (:7011 main, :7012 cache). Edit resources/redis-router.yaml while it runs.
# Ctrl-C (or SIGTERM) stops everything.
source "$(dirname "$0")/../lib.sh"
example_setup
require_free_ports 7011 7012 15010 6381 9902
start_redis 7011
start_redis 7012
start_child control_plane node bin/meltemi.js control-plane --resources examples/control-plane/resources --port 15010
start_child proxy node bin/meltemi.js run --config examples/control-plane/meltemi.yaml
wait_port 6381
cat <<'MSG'
meltemi: try it from another terminal:
  redis-cli -p 6381 set cache:greeting hello     # routed to the cache subset (127.0.0.1:7012)
  redis-cli -p 6381 set user:1 ana               # routed to main (127.0.0.1:7011)
  redis-cli -p 7012 keys '*'
  curl -s 127.0.0.1:9902/config_dump             # the routes and versions the proxy holds
MSG
wait_children
