// Imports a benchmark peer as a module of bench/ does: from bench/node_modules, with the conditions of
// `import`. The benchmarks run compiled from dist/bench/, whose own lookups never reach bench/; they
// call this file (bench/lib/peers.ts) instead.
export function importPeer(name) {
  return import(name);
}
