#!/usr/bin/env bash
# Sets up and runs the whole test suite: installs the real peers the tests need (redis-server,
# redis-benchmark, the Apache Thrift compiler, Prometheus, iptables and curl for the sidecar tests) and the npm
# packages when missing, builds (the capture addon needs a C compiler), runs mocha. The sidecar tests build
# network namespaces and need root; as another user they are skipped.
set -euo pipefail
cd "$(dirname "$0")/.."
node scripts/check-node.cjs

PEERS="redis-server redis-tools thrift-compiler prometheus iptables curl"
if ! command -v redis-server >/dev/null || ! command -v redis-benchmark >/dev/null || ! command -v thrift >/dev/null || ! command -v prometheus >/dev/null || ! command -v iptables >/dev/null || ! command -v curl >/dev/null; then
  if [ "$(id -u)" = 0 ]; then apt-get update && apt-get install -y --no-install-recommends $PEERS
  else sudo apt-get update && sudo apt-get install -y --no-install-recommends $PEERS; fi
fi
[ -d node_modules ] || npm ci
npm test
