/**
 * Machine topology and worker placement: how many partition-owner workers to start, on which CPUs,
 * owning which partitions, and pinning a worker to its node's CPUs where Linux allows. Imports nothing
 * from the rest of the engine.
 */
export {
  currentThreadId,
  decidePinning,
  formatCpuList,
  type PinningDecision,
  type PinThreadOptions,
  type PinWorkersMode,
  pinCurrentThread,
  placeCurrentThread,
  readThreadCpuList,
  type ThreadPlacement,
} from './affinity.js';
export {
  NumaPlanError,
  type PlannedWorker,
  type PlanWorkersOptions,
  partitionsMax,
  planWorkers,
  type WorkerPlan,
} from './plan.js';
export {
  cpuIdMax,
  parseCpuList,
  type ReadTopologyOptions,
  readTopology,
  type Topology,
  type TopologyNode,
} from './topology.js';
