import xxhash from 'xxhash-wasm';

/** The xxhash functions (h32Raw, h64ToString, ...) of one instantiated xxhash-wasm module. */
export type XxhashApi = Awaited<ReturnType<typeof xxhash>>;

let instance: Promise<XxhashApi> | undefined;

/**
 * The xxhash-wasm module, instantiated once per thread. Its factory is async because it compiles a
 * WebAssembly module; calling it per checksum would compile (and keep) one module per call, so the
 * promise is cached and every log, checkpoint, manifest and metadata checksum shares it. It is created
 * lazily so a thread that never checksums anything never pays for the compilation.
 */
export function xxhashApi(): Promise<XxhashApi> {
  instance ??= xxhash();
  return instance;
}
