/**
 * comlink ships its Node adapter as an .mjs file whose declarations are in node-adapter.d.ts, which
 * NodeNext resolution does not pair with it. This states the one export used.
 */
declare module 'comlink/dist/esm/node-adapter.mjs' {
  import type { Endpoint } from 'comlink';

  interface NodeEndpoint {
    postMessage(message: unknown, transfer?: readonly import('node:worker_threads').TransferListItem[]): void;
    // biome-ignore lint/suspicious/noExplicitAny: listeners of MessagePort and Worker take differing argument types.
    on(type: string, listener: (...args: any[]) => void): void;
    // biome-ignore lint/suspicious/noExplicitAny: as above.
    off(type: string, listener: (...args: any[]) => void): void;
    start?: () => void;
  }

  export default function nodeEndpoint(endpoint: NodeEndpoint): Endpoint;
}
