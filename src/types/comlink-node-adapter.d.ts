/**
 * comlink ships its Node adapter as an .mjs file whose declarations are in node-adapter.d.ts, which
 * NodeNext resolution does not pair with it. This states the one export used, for the two kinds of
 * endpoint this project passes: a worker's parent port and a Worker.
 */
declare module 'comlink/dist/esm/node-adapter.mjs' {
  import type { MessagePort, Worker } from 'node:worker_threads';
  import type { Endpoint } from 'comlink';

  export default function nodeEndpoint(endpoint: MessagePort | Worker): Endpoint;
}
