/**
 * Machine topology and worker placement: how many partition-owner workers to start, on which CPUs,
 * owning which partitions. Imports nothing from the rest of the engine.
 */
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
