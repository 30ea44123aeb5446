// What the fault tests share: an upstream that never answers and a real redis-server for the
// suite, and for each test a proxy and clients that are stopped after it.

import type Redis from 'ioredis';
import type { Meltemi } from '../../runtime/server';
import { BlackHole } from './black-hole';
import { portOf, startProxy } from './proxy';
import { redisClient, RedisServer } from './redis-server';

export interface FaultBed {
  hole: BlackHole;
  redis: RedisServer;
  proxy: Meltemi | undefined;
  /** Starts the test's proxy (stopped after the test). */
  start(yaml: string): Promise<Meltemi>;
  /** A client of the test's proxy listener `redis` (disconnected after the test). */
  client(): Redis;
}

/** Registers the hooks in the calling `describe` and returns the bed they fill. */
export function useFaultBed(): FaultBed {
  const clients: Redis[] = [];
  const bed: FaultBed = {
    hole: undefined as unknown as BlackHole,
    redis: undefined as unknown as RedisServer,
    proxy: undefined,
    async start(yaml) {
      bed.proxy = await startProxy(yaml);
      return bed.proxy;
    },
    client() {
      const c = redisClient(portOf(bed.proxy!, 'redis'));
      clients.push(c);
      return c;
    },
  };
  before(async () => {
    bed.hole = await BlackHole.start();
    bed.redis = await RedisServer.start();
  });
  afterEach(async () => {
    for (const c of clients.splice(0)) c.disconnect();
    await bed.proxy?.stop();
    bed.proxy = undefined;
  });
  after(async () => {
    await bed.hole?.stop();
    await bed.redis?.stop();
  });
  return bed;
}
