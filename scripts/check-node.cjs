#!/usr/bin/env node
// Exits 1 with how to get a supported Node.js when this one is too old. Written for any Node
// version (no modern syntax), since its job is to run on the old ones.
'use strict';
var MIN = [20, 19, 0];
var have = process.versions.node.split('.').map(Number);
function older(a, b) {
  for (var i = 0; i < 3; i++) if (a[i] !== b[i]) return a[i] < b[i];
  return false;
}
if (older(have, MIN)) {
  process.stderr.write(
    'meltemi needs Node.js >= ' + MIN.join('.') + '; this is ' + process.versions.node + '.\n' +
    'Debian 12 ships Node 18. Install a supported one, for example from NodeSource:\n' +
    '  curl -fsSL https://deb.nodesource.com/setup_20.x | sudo bash - && sudo apt-get install -y nodejs\n' +
    'or with nvm:  nvm install 20\n');
  process.exit(1);
}
