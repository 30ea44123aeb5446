// TARS packets for the fuzzer: requests and responses as the @tars/rpc framework encodes them
// (calls, one-way calls, context maps, TUP, tars_ping, long strings and bodies, every id width).

import type { Corpus } from './corpus';
import { encodeRequest, encodeResponse, stringArg } from '../helpers/tars-peers';

export function tarsCorpus(): Corpus {
  return {
    requests: [
      encodeRequest({ id: 1 }),
      encodeRequest({ id: 200, func: 'note', oneway: true }),
      encodeRequest({ id: 70_000, context: { tenant: 'gold', trace: 'abc' }, status: { STATUS_DYED_KEY: 'u1' } }),
      encodeRequest({ id: -5, version: 3, func: 'getUsr', context: { a: 'b' } }),
      encodeRequest({ id: 2 ** 31 - 1, func: 'tars_ping', body: Buffer.alloc(0) }),
      encodeRequest({ id: 9, servant: 'S'.repeat(300), body: stringArg('x'.repeat(400)), timeout: 3000 }),
      Buffer.concat([encodeRequest({ id: 10 }), encodeRequest({ id: 11, func: 'slow' })]),
    ],
    responses: [
      encodeResponse({ id: 1, body: stringArg('ok') }),
      encodeResponse({ id: 70_000, ret: -3, desc: 'no func' }),
      encodeResponse({ id: 3, context: { shard: '3' }, body: stringArg('y'.repeat(300)) }),
      encodeRequest({ id: 4, version: 2, status: { STATUS_RESULT_CODE: '0', STATUS_RESULT_DESC: '' } }),
      Buffer.concat([encodeResponse({ id: 5 }), encodeResponse({ id: 6, ret: -7 })]),
    ],
  };
}
