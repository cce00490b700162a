/**
 * lz4-napi, loaded on first use. A native addon costs tens of milliseconds to load, and a database
 * without checkpoints (every new one) never needs it: its owner workers start without it.
 */
type Lz4 = typeof import('lz4-napi');

let loading: Promise<Lz4> | null = null;

export function loadLz4(): Promise<Lz4> {
  loading ??= import('lz4-napi');
  return loading;
}
