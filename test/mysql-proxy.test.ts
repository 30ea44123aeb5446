// The MySQL codec end to end: real MariaDB servers (Debian's mariadbd), the real mysql2 driver
// and the mariadb command-line client, through meltemi. Two servers: `a` greets (the default
// route) and holds database `shop`; `b` holds `orders`, and a login naming `orders` (or the user
// `reporter`) is routed there, moving the session with an auth switch.

import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import net from 'node:net';
import { Readable } from 'node:stream';
import { promisify } from 'node:util';
import mysql from 'mysql2/promise';
import type { Meltemi } from '../runtime/server';
import { MariaDbServer } from './helpers/mariadb-server';
import { requirePeer } from './helpers/peers';
import { adminGet, metricSum, portOf, startProxy } from './helpers/proxy';
import { mutate, Rng } from './fuzz/engine';
import { mysqlCorpus } from './fuzz/mysql-corpus';

const run = promisify(execFile);

const USERS = `
CREATE USER 'app'@'%' IDENTIFIED BY 'secret';
CREATE USER 'reporter'@'%' IDENTIFIED BY 'r3port';
CREATE USER 'nopw'@'%';
`;

describe('mysql: MariaDB through meltemi', function () {
  this.timeout(60_000);
  let a: MariaDbServer;
  let b: MariaDbServer;
  let proxy: Meltemi;
  let port: number;
  let adminPort: number;

  before(async function () {
    await requirePeer(this, 'mariadbd', ['--version'], 'apt-get install mariadb-server');
    [a, b] = await Promise.all([MariaDbServer.start(), MariaDbServer.start()]);
    await a.admin(`${USERS}
      CREATE DATABASE shop; CREATE TABLE shop.items (id INT PRIMARY KEY, name VARCHAR(40), price DECIMAL(8,2));
      INSERT INTO shop.items VALUES (1, 'pen', 1.50), (2, 'ink', 7.25), (3, 'pad', 3.00);
      GRANT ALL ON shop.* TO 'app'@'%'; GRANT ALL ON shop.* TO 'nopw'@'%';
      CREATE PROCEDURE shop.two() BEGIN SELECT 1 AS one; SELECT 'x' AS a, 'y' AS b; END;`);
    await b.admin(`${USERS}
      CREATE DATABASE orders; CREATE TABLE orders.order_lines (id INT PRIMARY KEY, qty INT);
      INSERT INTO orders.order_lines VALUES (10, 4), (11, 9);
      GRANT ALL ON orders.* TO 'app'@'%'; GRANT SELECT ON orders.* TO 'reporter'@'%';`);
    proxy = await startProxy(`
admin: { port: 0 }
plugins: { directory: build/plugins }
listeners:
  - name: mysql
    port: 0
    protocol: mysql
    route_config:
      routes:
        - name: orders
          match: { metadata: [ { name: database, exact_match: orders } ] }
          route: { cluster: b }
        - name: reports
          match: { metadata: [ { name: user, exact_match: reporter } ] }
          route: { cluster: b }
        - name: default
          route: { cluster: a }
clusters:
  - name: a
    endpoints: [ { address: 127.0.0.1, port: ${a.port} } ]
  - name: b
    endpoints: [ { address: 127.0.0.1, port: ${b.port} } ]
`);
    port = portOf(proxy, 'mysql');
    adminPort = proxy.admin!.port;
  });

  after(async () => {
    await proxy?.stop();
    await Promise.all([a?.stop(), b?.stop()]);
  });

  const connect = (opts: mysql.ConnectionOptions) => mysql.createConnection({ host: '127.0.0.1', port, ...opts });

  it('relays the greeting and login, and serves text queries from the default route', async () => {
    const c = await connect({ user: 'app', password: 'secret', database: 'shop' });
    try {
      const [rows] = await c.query('SELECT id, name FROM items ORDER BY id');
      assert.deepEqual((rows as Array<{ id: number; name: string }>).map((r) => r.name), ['pen', 'ink', 'pad']);
      const [res] = await c.query('UPDATE items SET price = price + 1 WHERE id = 1');
      assert.equal((res as mysql.ResultSetHeader).affectedRows, 1);
    } finally {
      await c.end();
    }
  });

  it('routes a login by database to another server, moving the session with an auth switch', async () => {
    const c = await connect({ user: 'app', password: 'secret', database: 'orders' });
    try {
      const [rows] = await c.query('SELECT qty FROM order_lines WHERE id = 11');
      assert.deepEqual(rows, [{ qty: 9 }]);
      // It is server b's session: its port, not a's.
      const [[info]] = await c.query('SELECT @@port AS p') as unknown as [[{ p: number }]];
      assert.equal(info.p, b.port);
    } finally {
      await c.end();
    }
  });

  it('routes a login by user', async () => {
    const c = await connect({ user: 'reporter', password: 'r3port' });
    try {
      const [[info]] = await c.query('SELECT @@port AS p, CURRENT_USER() AS u') as unknown as [[{ p: number; u: string }]];
      assert.equal(info.p, b.port);
      assert.equal(info.u, 'reporter@%');
    } finally {
      await c.end();
    }
  });

  it('passes a wrong password\'s refusal through, from the routed server', async () => {
    await assert.rejects(connect({ user: 'app', password: 'wrong', database: 'orders' }), (err: { code?: string; errno?: number }) => {
      assert.equal(err.errno, 1045);
      return true;
    });
    await assert.rejects(connect({ user: 'app', password: 'wrong', database: 'shop' }), (err: { errno?: number }) => err.errno === 1045);
  });

  it('serves a user without a password, and an empty auth response in a rebind', async () => {
    const c = await connect({ user: 'nopw', database: 'shop' });
    const [[r]] = await c.query('SELECT 1 + 1 AS two') as unknown as [[{ two: number }]];
    assert.equal(r.two, 2);
    await c.end();
  });

  it('prepared statements, binary results and statement close pass through', async () => {
    const c = await connect({ user: 'app', password: 'secret', database: 'shop' });
    try {
      for (const id of [1, 2, 3, 2]) {
        const [rows] = await c.execute('SELECT name, price FROM items WHERE id = ?', [id]);
        assert.equal((rows as unknown[]).length, 1);
      }
      const [none] = await c.execute('SELECT name FROM items WHERE id > ? AND name = ?', [100, 'x']);
      assert.deepEqual(none, []);
      await c.unprepare('SELECT name, price FROM items WHERE id = ?');
      const [ins] = await c.execute('INSERT INTO items VALUES (?, ?, ?)', [4, 'cap', 2.5]);
      assert.equal((ins as mysql.ResultSetHeader).affectedRows, 1);
    } finally {
      await c.end();
    }
  });

  it('multi-statement queries and procedures return every result set', async () => {
    const c = await connect({ user: 'app', password: 'secret', database: 'shop', multipleStatements: true });
    try {
      const [sets] = await c.query('SELECT 1 AS x; SELECT name FROM items WHERE id = 2; DO 1') as unknown as [unknown[]];
      assert.equal(sets.length, 3);
      assert.deepEqual(sets[0], [{ x: 1 }]);
      assert.deepEqual(sets[1], [{ name: 'ink' }]);
      const [proc] = await c.query('CALL two()') as unknown as [unknown[]];
      assert.deepEqual(proc[0], [{ one: 1 }]);
      assert.deepEqual(proc[1], [{ a: 'x', b: 'y' }]);
    } finally {
      await c.end();
    }
  });

  it('streams a large result set without holding it (1 MB rows, 20 MB in all)', async () => {
    const c = await connect({ user: 'app', password: 'secret', database: 'shop' });
    try {
      const [rows] = await c.query("SELECT REPEAT('z', 1048576) AS big FROM seq_1_to_20") as unknown as [Array<{ big: string }>];
      assert.equal(rows.length, 20);
      assert.ok(rows.every((r) => r.big.length === 1048576));
    } finally {
      await c.end();
    }
  });

  it('LOAD DATA LOCAL INFILE: the server asks, the client\'s file goes through, the OK comes back', async () => {
    const c = await connect({ user: 'app', password: 'secret', database: 'shop', infileStreamFactory: () => Readable.from([Buffer.from('7\tnib\t0.10\n8\tcap\t0.20\n')]) });
    try {
      const [res] = await c.query("LOAD DATA LOCAL INFILE 'items.tsv' INTO TABLE items");
      assert.equal((res as mysql.ResultSetHeader).affectedRows, 2);
      const [rows] = await c.query('SELECT name FROM items WHERE id IN (7, 8) ORDER BY id');
      assert.deepEqual(rows, [{ name: 'nib' }, { name: 'cap' }]);
    } finally {
      await c.end();
    }
  });

  it('a client that requires TLS is refused by its own driver; one that prefers it goes on in plaintext', async () => {
    await assert.rejects(connect({ user: 'app', password: 'secret', ssl: { rejectUnauthorized: false } }), /secure connection|SSL|TLS/i);
    // The mariadb CLI prefers TLS by default and falls back when the server offers none.
    const { stdout } = await run('mariadb', ['-h', '127.0.0.1', '-P', String(port), '-u', 'app', '-psecret', 'shop', '--batch', '--skip-column-names', '-e', 'SELECT name FROM items WHERE id = 3']);
    assert.equal(stdout.trim(), 'pad');
  });

  it('the mariadb command-line client reaches the routed server too', async () => {
    const { stdout } = await run('mariadb', ['-h', '127.0.0.1', '-P', String(port), '-u', 'app', '-psecret', 'orders', '--batch', '--skip-column-names', '-e', 'SELECT SUM(qty) FROM order_lines; SELECT @@port']);
    assert.deepEqual(stdout.trim().split('\n'), ['13', String(b.port)]);
  });

  it('counts requests per command', async () => {
    const count = async (command: string) => metricSum((await adminGet(adminPort, '/metrics')).body, 'meltemi_requests_by_command_total', { listener: 'mysql', command });
    const [queries, pings, logins] = [await count('COM_QUERY'), await count('COM_PING'), await count('LOGIN')];
    const c = await connect({ user: 'app', password: 'secret', database: 'shop' });
    await c.query('SELECT name FROM items');
    await c.query('SELECT 1');
    await c.ping();
    await c.end();
    assert.equal(await count('COM_QUERY'), queries + 2);
    assert.equal(await count('COM_PING'), pings + 1);
    assert.equal(await count('LOGIN'), logins + 1);
  });

  it('sessions go on when the codec instance is replaced (a trap elsewhere): their state is the host\'s', async () => {
    const sessions = await Promise.all([
      connect({ user: 'app', password: 'secret', database: 'shop', multipleStatements: true }),
      connect({ user: 'app', password: 'secret', database: 'orders', multipleStatements: true }),
    ]);
    for (const c of sessions) await c.execute('SELECT 1 AS one WHERE 1 = ?', [1]);
    const plugin = proxy.listener('mysql')!.context.plugin;
    const recycles = plugin.recycles;
    // What a trap does to the shared instance: poisoned, then replaced by a fresh one.
    (plugin.instance as unknown as { wasm: { violation(m: string): Error } }).wasm.violation('simulated trap');
    plugin.replaceInstance(new Error('simulated trap'));
    assert.equal(plugin.recycles, recycles + 1);
    for (const c of sessions) {
      const [rows] = await c.execute('SELECT ? AS echo', ['still here']);
      assert.deepEqual(rows, [{ echo: 'still here' }]);
      const [sets] = await c.query('SELECT 1 AS a; SELECT 2 AS b') as unknown as [unknown[]];
      assert.equal(sets.length, 2);
      await c.end();
    }
  });

  it('200 connections of mutated logins and commands: each closes alone, a healthy session is unaffected', async () => {
    const good = await connect({ user: 'app', password: 'secret', database: 'shop' });
    const traps = proxy.listener('mysql')!.context.plugin.traps;
    const rng = new Rng(16);
    const seeds = mysqlCorpus().requests;
    const logins = seeds.slice(0, 3);
    await Promise.all(Array.from({ length: 200 }, (_, i) => new Promise<void>((resolve) => {
      const s = net.connect(port, '127.0.0.1');
      s.on('error', () => {});
      s.on('close', () => resolve());
      s.once('data', () => {
        // After the greeting: a (mutated) login, then mutated commands; half end, half stay open.
        const junk = [mutate(rng, logins[rng.below(logins.length)], logins), ...Array.from({ length: rng.below(4) }, () => mutate(rng, seeds[rng.below(seeds.length)], seeds))];
        if (i % 2 === 0) s.end(Buffer.concat(junk)); else s.write(Buffer.concat(junk));
        s.resume();
      });
      setTimeout(() => s.destroy(), 3000).unref();
    })));
    const [[r]] = await good.query('SELECT name FROM items WHERE id = 2') as unknown as [[{ name: string }]];
    assert.equal(r.name, 'ink');
    await good.end();
    assert.equal(proxy.listener('mysql')!.context.plugin.traps, traps, 'no trap');
  });

  it('a client speaking before the greeting, or garbage at login, closes only its own connection', async () => {
    const good = await connect({ user: 'app', password: 'secret', database: 'shop' });
    for (const junk of [Buffer.from('GET / HTTP/1.1\r\n\r\n'), Buffer.from([0xff, 0xff, 0xff, 0x01, 0x00])]) {
      const s = net.connect(port, '127.0.0.1');
      const closed = new Promise<Buffer>((resolve) => {
        const parts: Buffer[] = [];
        s.on('data', (d) => parts.push(d));
        s.on('close', () => resolve(Buffer.concat(parts)));
        s.on('error', () => {});
      });
      await new Promise((r) => s.once('data', r)); // the greeting
      s.write(junk);
      const got = await closed;
      assert.ok(got.includes(Buffer.from('#08S01')), `a protocol error reply, got ${got.toString('latin1')}`);
    }
    const [[r]] = await good.query('SELECT 7 AS n') as unknown as [[{ n: number }]];
    assert.equal(r.n, 7);
    await good.end();
  });
});
