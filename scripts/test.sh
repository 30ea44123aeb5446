#!/usr/bin/env bash
# Sets up and runs the whole test suite: installs the real peers the tests need (redis-server,
# redis-benchmark, the Apache Thrift compiler, Prometheus, iptables and curl for the sidecar tests, MariaDB,
# memcached and ZooKeeper for the MySQL, Memcached and ZooKeeper codecs) and the npm
# packages when missing, builds (the capture addon needs a C compiler), runs mocha. The sidecar tests build
# network namespaces and need root; as another user they are skipped.
set -euo pipefail
cd "$(dirname "$0")/.."
node scripts/check-node.cjs

PEERS="redis-server redis-tools thrift-compiler prometheus iptables curl mariadb-server mariadb-client memcached zookeeper"
have() { command -v "$1" >/dev/null || [ -x "/usr/sbin/$1" ]; }
if ! have redis-server || ! have redis-benchmark || ! have thrift || ! have prometheus || ! have iptables || ! have curl \
  || ! have mariadbd || ! have memcached || ! [ -x /usr/share/zookeeper/bin/zkServer.sh ]; then
  if [ "$(id -u)" = 0 ]; then apt-get update && apt-get install -y --no-install-recommends $PEERS
  else sudo apt-get update && sudo apt-get install -y --no-install-recommends $PEERS; fi
fi
[ -d node_modules ] || npm ci
npm test
