/** The comparison's tables: throughput and latency per store and workload, ratios, targets and checks. */
import { formatCount, formatFixed, formatRatio, formatTable, perCpuSecond } from '../lib/format.js';
import type { ResultLine } from './child.js';
import type { StreamOutcome } from './driver.js';
import type { StoreSummary } from './rounds.js';
import { isLightning, type StoreName, storeLabels } from './stores.js';

/** The durability column, short; bench/README.md and the lines under the tables say it in full. */
const durabilityShort: Record<StoreName, string> = {
  'lightning-sync': 'fdatasync per ack',
  'lightning-relaxed': 'write(2); sync 100 ms',
  'lightning-paged': 'fdatasync per ack',
  lmdb: 'fsync per commit*',
  level: 'write(2); no sync',
  sqlite: 'WAL, sync=NORMAL',
  map: 'memory only',
};

/**
 * The lightning-db rows the targets are judged for: the in-memory ones. lightning-paged runs with a
 * fraction of its data in memory; its figures are compared in its ratio table, not against targets.
 */
function judged(store: StoreName): boolean {
  return isLightning(store) && store !== 'lightning-paged';
}

/** The peers lightning-db is to be ahead of on every workload. */
const durablePeers: readonly StoreName[] = ['lmdb', 'level', 'sqlite'];
const mapCeilingFactor = 3;
/** Workloads whose operations are (almost) all point reads: the ones the Map ceiling target is about. */
const readWorkloads = ['B', 'C', 'D'];

function streamOf(result: ResultLine, name: string): StreamOutcome | undefined {
  return result.streams.find((stream) => stream.name === name);
}

function mib(bytes: number): string {
  return formatCount(bytes / 2 ** 20);
}

function us(value: number): string {
  return value >= 100 ? formatCount(value) : formatFixed(value, 1);
}

export function printThroughput(results: StoreSummary[], streamNames: string[]): void {
  const rounds = Math.max(...results.map((result) => result.rounds));
  const rows: string[][] = [];
  for (const name of streamNames) {
    for (const result of results) {
      const stream = streamOf(result, name);
      if (stream === undefined) continue;
      const { latency } = stream;
      rows.push([
        name,
        storeLabels[result.store],
        durabilityShort[result.store],
        formatCount(stream.opsPerSecond),
        formatCount(perCpuSecond(stream.operations, stream.cpuSeconds)),
        us(latency.p50Us),
        us(latency.p99Us),
        us(latency.p999Us),
        mib(stream.peakRssBytes),
        formatFixed(stream.cpuSeconds / stream.seconds, 2),
        ...(rounds > 1 ? [`${formatFixed(result.spreadPercent[name] ?? 0, 0)}%`] : []),
      ]);
    }
  }
  console.log(
    'throughput and latency per operation (latency in microseconds; peak RSS of the process so far)' +
      (rounds > 1 ? `; the median of ${rounds} rounds, spread = (max - min) / median of ops/s` : ''),
  );
  const headers = [
    'workload',
    'store',
    'durability',
    'ops/s',
    'ops/CPU-s',
    'p50',
    'p99',
    'p99.9',
    'peak RSS MiB',
    'cores',
  ];
  console.log(formatTable(rounds > 1 ? [...headers, 'spread'] : headers, rows, 'lllrrrrrrrr'));
  console.log(
    '* lmdb-js resolves put() at commit; the fsync of that commit follows it (overlappingSync). ' +
      "'ops/CPU-s' = operations per CPU-second of the process (all threads) over the stream; " +
      "'cores' = process CPU time / wall time.",
  );
}

/** Latency per operation type, for the workloads that mix types. */
export function printLatencyByOp(results: ResultLine[], streamNames: string[]): void {
  const rows: string[][] = [];
  for (const name of streamNames) {
    for (const result of results) {
      const stream = streamOf(result, name);
      if (stream === undefined) continue;
      for (const [op, summary] of Object.entries(stream.latencyByOp)) {
        rows.push([
          name,
          storeLabels[result.store],
          op,
          formatCount(summary.count),
          us(summary.p50Us),
          us(summary.p99Us),
          us(summary.p999Us),
        ]);
      }
    }
  }
  console.log('\nlatency by operation type (microseconds)');
  console.log(formatTable(['workload', 'store', 'op', 'count', 'p50', 'p99', 'p99.9'], rows, 'lllrrrr'));
}

export function printRatios(results: ResultLine[], streamNames: string[]): void {
  for (const lightning of results.filter((result) => isLightning(result.store))) {
    // lightning-paged is also compared with the in-memory lightning-db rows.
    const others = results.filter((result) =>
      lightning.store === 'lightning-paged' ? result.store !== lightning.store : !isLightning(result.store),
    );
    if (others.length === 0) continue;
    const rows = streamNames.map((name) => {
      const own = streamOf(lightning, name);
      return [
        name,
        ...others.map((other) => {
          const theirs = streamOf(other, name);
          return own === undefined || theirs === undefined
            ? '-'
            : `${formatRatio(own.opsPerSecond / theirs.opsPerSecond)} / ${formatRatio(
                perCpuSecond(own.operations, own.cpuSeconds) /
                  perCpuSecond(theirs.operations, theirs.cpuSeconds),
              )}`;
        }),
      ];
    });
    console.log(
      `\n${storeLabels[lightning.store]} ÷ each store, ops/s / ops per CPU-second (above 1.00x: ${storeLabels[lightning.store]} is ahead)`,
    );
    console.log(
      formatTable(
        ['workload', ...others.map((other) => storeLabels[other.store])],
        rows,
        `l${'r'.repeat(others.length)}`,
      ),
    );
  }
}

/**
 * What each stream cost in storage writes and kernel time, every thread of the child: bytes handed to
 * write calls (/proc/self/io wchar), page cache dirtied (write_bytes, which counts whole folios), write
 * calls, and the system share of its CPU time.
 */
export function printIo(results: ResultLine[], streamNames: string[]): void {
  const rows: string[][] = [];
  for (const name of streamNames) {
    for (const result of results) {
      const stream = streamOf(result, name);
      if (stream?.io === undefined) continue;
      rows.push([
        name,
        storeLabels[result.store],
        formatCount(stream.io.writeCallBytes / 2 ** 20),
        formatFixed(stream.io.writeCallBytes / 1024 / stream.operations, 1),
        formatFixed(stream.io.writeBytes / 1024 / stream.operations, 1),
        formatCount(stream.io.writeCalls),
        formatCount(stream.io.readCallBytes / 2 ** 20),
        `${formatFixed((stream.systemCpuSeconds / Math.max(stream.cpuSeconds, 1e-9)) * 100, 0)}%`,
      ]);
    }
  }
  if (rows.length === 0) return;
  console.log(
    '\nstorage I/O per stream (/proc/self/io of the child, every thread): MiB handed to write calls (wchar), ' +
      'per operation, page cache dirtied per operation (write_bytes: whole folios, up to 2 MiB each, so not the ' +
      'bytes written; see pool-figures.ts), write calls, MiB returned by read calls (page cache or device), ' +
      'system share of CPU time',
  );
  console.log(
    formatTable(
      [
        'workload',
        'store',
        'MiB written',
        'KiB/op',
        'dirtied KiB/op',
        'write calls',
        'MiB read',
        'system CPU',
      ],
      rows,
      'llrrrrrr',
    ),
  );
}

/**
 * The buffer pools of the stores that have them (lightning-paged), per stream: misses and evictions
 * during it, the median page read's latency bucket, and the pools after it; then the reopen after the
 * load.
 */
export function printPools(results: ResultLine[], streamNames: string[]): void {
  const pooled = results.filter((result) => result.streams.some((stream) => stream.pool !== undefined));
  if (pooled.length === 0) return;
  const severalRounds = pooled.some((result) => (result.round ?? 1) > 1);
  const label = (result: ResultLine): string =>
    severalRounds ? `${storeLabels[result.store]} #${result.round ?? 1}` : storeLabels[result.store];
  const rows: string[][] = [];
  for (const name of streamNames) {
    for (const result of pooled) {
      const pool = streamOf(result, name)?.pool;
      if (pool === undefined) continue;
      rows.push([
        name,
        label(result),
        formatCount(pool.misses),
        formatFixed(pool.missesPerOperation, 2),
        formatCount(pool.evictions),
        pool.readP50,
        `${formatCount(pool.residentPages)} / ${formatCount(pool.framesMax)}`,
        formatCount(pool.dirtyPages),
        formatCount(pool.pagesAllocated),
        `${formatFixed((pool.framesMax / Math.max(1, pool.pagesAllocated)) * 100, 1)}%`,
      ]);
    }
  }
  console.log(
    '\nbuffer pools (summed over partitions): page-file reads (misses) and evictions during the stream, by every ' +
      "thread; the median page read's latency bucket; resident, dirty and allocated pages after it",
  );
  console.log(
    formatTable(
      [
        'workload',
        'store',
        'misses',
        'misses/op',
        'evictions',
        'page read p50',
        'resident / frames',
        'dirty',
        'pages',
        'frames/pages',
      ],
      rows,
      'llrrrrrrrr',
    ),
  );
  for (const result of pooled) {
    if (result.reopen === undefined) continue;
    console.log(
      `  ${label(result)}: reopened after the load: close ${formatFixed(result.reopen.closeSeconds * 1000, 0)} ms, ` +
        `reopen ${formatFixed(result.reopen.openSeconds * 1000, 1)} ms (open() of the loaded database` +
        (result.reopen.replayedRecords === undefined
          ? ')'
          : `, ${formatCount(result.reopen.replayedRecords)} log records replayed since the last page sets)`),
    );
  }
}

export interface TargetVerdict {
  target: string;
  store: StoreName;
  workload: string;
  ratio: number;
  met: boolean;
}

/**
 * The issue's targets: lightning-db ahead of lmdb-js, classic-level and better-sqlite3 on every
 * workload; read throughput within 3x of the Map. Judged for each lightning-db row that ran.
 */
export function evaluateTargets(results: ResultLine[], streamNames: string[]): TargetVerdict[] {
  const verdicts: TargetVerdict[] = [];
  const map = results.find((result) => result.store === 'map');
  for (const lightning of results.filter((result) => judged(result.store))) {
    for (const name of streamNames) {
      const own = streamOf(lightning, name);
      if (own === undefined) continue;
      for (const peer of results.filter((result) => durablePeers.includes(result.store))) {
        const theirs = streamOf(peer, name);
        if (theirs === undefined) continue;
        const ratio = own.opsPerSecond / theirs.opsPerSecond;
        verdicts.push({
          target: `ahead of ${storeLabels[peer.store]}`,
          store: lightning.store,
          workload: name,
          ratio,
          met: ratio > 1,
        });
      }
      const ceiling = map === undefined ? undefined : streamOf(map, name);
      if (ceiling !== undefined && readWorkloads.includes(name)) {
        const ratio = own.opsPerSecond / ceiling.opsPerSecond;
        verdicts.push({
          target: `within ${mapCeilingFactor}x of Map`,
          store: lightning.store,
          workload: name,
          ratio,
          met: ratio >= 1 / mapCeilingFactor,
        });
      }
    }
  }
  return verdicts;
}

export function printTargets(verdicts: TargetVerdict[]): void {
  if (verdicts.length === 0) return;
  console.log(
    '\ntargets (ratio = lightning-db ops/s ÷ the other store\'s; "within 3x of Map" needs ≥ 0.33x)',
  );
  const rows = verdicts.map((verdict) => [
    storeLabels[verdict.store],
    verdict.workload,
    verdict.target,
    formatRatio(verdict.ratio),
    verdict.met
      ? 'MET'
      : verdict.target.startsWith('within')
        ? `NOT MET (${formatFixed(1 / verdict.ratio, 2)}x slower than Map)`
        : `NOT MET (needs ${formatFixed(1 / verdict.ratio, 2)}x)`,
  ]);
  console.log(formatTable(['store', 'workload', 'target', 'ratio', 'verdict'], rows, 'lllrl'));
  const missed = verdicts.filter((verdict) => !verdict.met).length;
  console.log(`${verdicts.length - missed} of ${verdicts.length} met`);
}

/** Everything every store must agree on: checksums, stable counts, no missing reads, final counts. */
export function checkAgreement(results: ResultLine[], streamNames: string[]): string[] {
  const problems: string[] = [];
  for (const result of results) {
    if (result.count !== result.expectedCount) {
      problems.push(
        `${storeLabels[result.store]}: ${result.count} entries at the end, expected ${result.expectedCount}`,
      );
    }
    for (const stream of result.streams) {
      if (stream.missingReads > 0) {
        problems.push(
          `${storeLabels[result.store]} ${stream.name}: ${stream.missingReads} reads of existing keys found nothing`,
        );
      }
    }
  }
  for (const name of streamNames) {
    const fingerprints = results.flatMap((result) => {
      const stream = streamOf(result, name);
      return stream === undefined
        ? []
        : [
            {
              store: result.store,
              print: `${stream.checksum}/${stream.stableReads}/${stream.stableScans}/${stream.stableScanRows}`,
            },
          ];
    });
    if (new Set(fingerprints.map((entry) => entry.print)).size > 1) {
      problems.push(
        `${name}: the stores disagree (checksum/stable reads/stable scans/their rows): ` +
          fingerprints.map((entry) => `${storeLabels[entry.store]} ${entry.print}`).join(', '),
      );
    }
  }
  return problems;
}

export function printChecks(results: ResultLine[], streamNames: string[]): void {
  const first = results[0];
  if (first === undefined) return;
  const rows = streamNames.flatMap((name) => {
    const stream = streamOf(first, name);
    if (stream === undefined) return [];
    const reads = stream.counts.read + stream.counts.rmw;
    const agreeing = results.filter((result) => streamOf(result, name)?.checksum === stream.checksum).length;
    const runs = results.filter((result) => streamOf(result, name) !== undefined).length;
    return [
      [
        name,
        stream.checksum,
        `${agreeing} of ${runs}`,
        reads === 0 ? '-' : `${formatCount(stream.stableReads)} of ${formatCount(reads)}`,
        stream.counts.scan === 0
          ? '-'
          : `${formatCount(stream.stableScans)} of ${formatCount(stream.counts.scan)}`,
        stream.counts.scan === 0 ? '-' : formatCount(stream.stableScanRows),
      ],
    ];
  });
  console.log(
    '\nchecks: the checksum covers every read and scan that no write of its own window could change',
  );
  console.log(
    formatTable(
      ['workload', 'checksum', 'runs agreeing', 'reads checked', 'scans checked', 'their rows'],
      rows,
      'llrrrr',
    ),
  );
  for (const result of results) {
    console.log(
      `  ${storeLabels[result.store]}${result.round !== undefined && result.round > 1 ? ` #${result.round}` : ''}: ${formatCount(result.count)} entries at the end (expected ${formatCount(result.expectedCount)}), ` +
        `open ${formatFixed(result.openSeconds, 2)} s, close ${formatFixed(result.closeSeconds, 2)} s` +
        (result.reopen === undefined
          ? ''
          : `; after the load: close ${formatFixed(result.reopen.closeSeconds, 2)} s, reopen ${formatFixed(result.reopen.openSeconds * 1000, 1)} ms`),
    );
  }
}
