// ZooKeeper packets for the fuzzer: sessions as node-zookeeper-client opens them (a ConnectRequest,
// then requests: create, reads with watches, writes, multi-free auth, setWatches, pings, close)
// and what servers answer (ConnectResponses, replies with and without errors, watch events).

import type { Corpus } from './corpus';
import { connectRequest, connectResponse, reply, request, watchEvent } from '../helpers/zookeeper-peers';

export function zookeeperCorpus(): Corpus {
  const connect = connectRequest();
  return {
    requests: [
      connect,
      Buffer.concat([connect, request(0, 'create', { path: '/app', data: Buffer.from('v'), acl: [], flags: 0 })]),
      Buffer.concat([connect, request(-4, 'auth', { type: 0, scheme: 'digest', auth: Buffer.from('u:p') }), request(-8, 'setWatches', { relativeZxid: Buffer.alloc(8), dataWatches: ['/w'], existWatches: ['/e'], childWatches: [] })]),
      Buffer.concat([connectRequest(Buffer.from('0100000000000001', 'hex')), request(1, 'getData', { path: '/app/config', watch: true }), request(-2, 'ping')]),
      Buffer.concat([connect, request(2, 'setData', { path: '/s', data: Buffer.alloc(300, 7), version: -1 }), request(3, 'exists', { path: '/e', watch: false })]),
      Buffer.concat([connect, request(4, 'getChildren2', { path: '/', watch: true }), request(5, 'delete', { path: '/d', version: 2 }), request(6, 'closeSession')]),
      request(7, 'exists', { path: '/x', watch: false }),
    ],
    responses: [
      connectResponse(),
      connectResponse(Buffer.alloc(8), 0),
      reply(0, 0, Buffer.from('00000004/app', 'latin1')),
      reply(1, -101),
      reply(-2),
      Buffer.concat([watchEvent(3, '/app/config'), reply(3, 0, Buffer.alloc(80))]),
      watchEvent(4, '/'),
    ],
  };
}
