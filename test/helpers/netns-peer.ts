// Thrift and Dubbo peers as processes of their own, for the network-namespace tests (a process
// runs in one namespace). The same peers as the in-process tests: Apache Thrift's npm library and
// a hessian2 Dubbo provider/consumer.
//   node netns-peer.js thrift-server NAME PORT     serves Echo on 127.0.0.1:PORT; prints "up"
//   node netns-peer.js thrift-call HOST PORT MSG    prints echo(MSG)'s answer
//   node netns-peer.js dubbo-provider NAME PORT    serves on 127.0.0.1:PORT; prints "up"
//   node netns-peer.js dubbo-call HOST PORT NAME    prints sayHello(NAME)'s value and server

import { startThriftServer, thriftClient } from './thrift-peers';
import { DubboConsumer, DubboProvider, sayHello } from './dubbo-peers';

const WIRE = { transport: 'framed', protocol: 'binary' } as const;

async function main(): Promise<void> {
  const [mode, a, b, c] = process.argv.slice(2);
  switch (mode) {
    case 'thrift-server':
      await startThriftServer(a, WIRE, { port: Number(b) });
      console.log('up');
      return;
    case 'thrift-call': {
      const client = await thriftClient(Number(b), WIRE, { host: a });
      const answer = await (client.echo as { echo(m: string, t: Map<string, string>, n: number[], f: Set<string>): Promise<string> }).echo(c, new Map(), [], new Set());
      console.log(answer);
      client.close();
      return;
    }
    case 'dubbo-provider':
      await DubboProvider.start(a, (call) => ({ value: `hello ${String(call.args[0])} from ${a}` }), { port: Number(b) });
      console.log('up');
      return;
    case 'dubbo-call': {
      const consumer = await DubboConsumer.connect(Number(b), a);
      const result = await consumer.invoke(sayHello(c));
      console.log(JSON.stringify(result.value));
      consumer.close();
      return;
    }
    default:
      throw new Error(`unknown mode ${mode}`);
  }
}

main().catch((err: Error) => {
  console.error(err.message);
  process.exit(1);
});
