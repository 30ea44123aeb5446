#!/usr/bin/env bash
# Sets up and runs the whole test suite: installs the real peers the tests need (redis-server,
# redis-benchmark) and the npm packages when missing, builds, and runs mocha.
set -euo pipefail
cd "$(dirname "$0")/.."

if ! command -v redis-server >/dev/null || ! command -v redis-benchmark >/dev/null; then
  if [ "$(id -u)" = 0 ]; then apt-get update && apt-get install -y redis-server redis-tools
  else sudo apt-get update && sudo apt-get install -y redis-server redis-tools; fi
fi
[ -d node_modules ] || npm ci
npm test
