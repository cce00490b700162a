/**
 * lightning-db/internals: the shared-memory structures under the engine, for tools, tests and
 * benchmarks that work on a partition's tree directly. Not part of the stable API: these change with
 * the storage format, without a major version.
 */
// See src/index.ts: the reference keeps Node's types available to consumers of the declarations.
/// <reference types="node" preserve="true" />

export {
  BTree,
  type BTreeOptions,
  checkTree,
  type TreeCheckReport,
  type TreeHandle,
  TreeReader,
  type TreeStats,
} from './shared-memory/index.js';
