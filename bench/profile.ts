/**
 * npm run profile -- <workload> — records where lightning-db spends its CPU time on one workload, on
 * every thread, and writes flamegraphs to a folder it prints at the end.
 *
 *   npm run profile -- update                      # 100,000 records, then 5 s of puts
 *   npm run profile -- read --records 1000000 --seconds 10
 *   npm run profile -- mixed --durability none --workers 1
 *   npm run profile -- scan --quick                # 20,000 records, 1 s
 *
 * Workloads: load, read, update, scan, mixed (see bench/profile-driver.ts). The driver runs twice, on
 * fresh databases, once per profiler:
 * - 0x (V8's --prof sampler, with its interactive flamegraph) sees the main thread only: the caller's
 *   side of reads and writes;
 * - `node --cpu-prof` writes one .cpuprofile per thread, the partition-owner workers included; each
 *   becomes a flamegraph of our own (owner-<k>.html), folded stacks and a top-20 by self time.
 */
import { spawnSync } from 'node:child_process';
import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgumentsOrExit } from './lib/args.js';
import { findRepoRoot } from './lib/environment.js';
import { resolvePeerFile } from './lib/peers.js';
import {
  cpuProfileFiles,
  foldedStacks,
  readThreadProfile,
  type ThreadProfile,
  topSelfTimes,
} from './profile/cpuprofile.js';
import { type ProfileWorkload, parseDriverArguments } from './profile/driver-options.js';
import { renderFlamegraph } from './profile/flamegraph.js';

const topCount = 20;
const thisFile = fileURLToPath(import.meta.url);
const repoRoot = findRepoRoot(path.dirname(thisFile));
/** The driver next to this file: dist/bench/profile-driver.js when compiled (how `npm run profile` runs it). */
const driverFile = path.join(path.dirname(thisFile), `profile-driver${path.extname(thisFile)}`);

interface Options {
  workload: ProfileWorkload;
  /** Flags handed to the driver as they are; it checks them. */
  driverFlags: string[];
}

/** Checks the flags as the driver will, so a typo fails here rather than inside a profiler. */
function parseArguments(argv: string[]): Options {
  const driverFlags = argv.slice(1);
  if (driverFlags.includes('--summary') || driverFlags.includes('--dir')) {
    throw new Error('--summary and --dir are set by the profile command itself');
  }
  return { workload: parseDriverArguments(argv).workload, driverFlags };
}

function zeroXCommand(): string {
  const manifestPath = resolvePeerFile('0x/package.json');
  const manifest = JSON.parse(readFileSync(manifestPath, 'utf8')) as { bin: string | Record<string, string> };
  const bin = typeof manifest.bin === 'string' ? manifest.bin : manifest.bin['0x']!;
  return path.join(path.dirname(manifestPath), bin);
}

/** Names threads for people: the main thread, then owners numbered in start order (thread-id order). */
function threadNames(threads: ThreadProfile[]): string[] {
  let owners = 0;
  return threads.map((thread) => {
    if (thread.threadId === 0) return 'main';
    return thread.isOwner ? `owner-${owners++}` : `worker-${thread.threadId}`;
  });
}

function ms(us: number): string {
  return (us / 1000).toFixed(1).padStart(9);
}

function threadSummary(name: string, thread: ThreadProfile): string {
  const busyUs = thread.root.totalUs;
  const lines = [
    `== ${name} (thread ${thread.threadId}): ${ms(busyUs).trim()} ms busy, ${ms(thread.idleUs).trim()} ms idle, ${ms(thread.wallUs).trim()} ms recorded`,
    `   self ms   % busy  function (file:line)`,
  ];
  for (const entry of topSelfTimes(thread.root, topCount)) {
    const share = busyUs > 0 ? ((100 * entry.selfUs) / busyUs).toFixed(1) : '0.0';
    lines.push(`${ms(entry.selfUs)}  ${share.padStart(6)}%  ${entry.label}`);
  }
  return lines.join('\n');
}

/**
 * Runs the driver once as `node <nodeFlags> driver ...` (or under 0x), each run on a fresh database in
 * a temp dir removed afterwards, so deleting its files stays out of the profile. Exits on failure.
 */
function runDriver(
  options: Options,
  outDir: string,
  runFile: string,
  command: string[],
  label: string,
): void {
  const dataDir = mkdtempSync(path.join(os.tmpdir(), `lightning-profile-${options.workload}-`));
  const driverArgs = [
    driverFile,
    options.workload,
    ...options.driverFlags,
    '--summary',
    runFile,
    '--dir',
    dataDir,
  ];
  console.log(`\n${label}`);
  const run = spawnSync(process.execPath, [...command, ...driverArgs], { cwd: outDir, stdio: 'inherit' });
  rmSync(dataDir, { recursive: true, force: true });
  // 0x exits 0 even when the profiled process failed; the driver's summary file says it finished.
  if (run.status !== 0 || !existsSync(runFile)) {
    console.error(`the profiled run did not finish (see its output above); partial output is in ${outDir}`);
    process.exit(1);
  }
}

function main(): void {
  const options = parseArgumentsOrExit(parseArguments);
  const stamp = new Date().toISOString().replace(/[:.]/g, '-');
  const outDir = path.join(repoRoot, 'bench', 'out', `profile-${options.workload}-${stamp}`);
  const cpuProfileDir = path.join(outDir, 'cpuprofile');
  const runFile = path.join(outDir, 'run.json');
  mkdirSync(cpuProfileDir, { recursive: true });

  // Two runs, one per profiler: with --cpu-prof and 0x's --prof in one process, V8's two samplers get
  // in each other's way and 0x records almost no ticks.
  const zeroX = [
    zeroXCommand(),
    '--output-dir',
    path.join(outDir, '0x'),
    '--output-html',
    path.join(outDir, 'main-thread.0x.html'),
    '--',
    'node',
  ];
  runDriver(
    options,
    outDir,
    path.join(outDir, 'run-0x.json'),
    zeroX,
    `1/2 '${options.workload}' under 0x (main thread)`,
  );
  const cpuProf = ['--cpu-prof', '--cpu-prof-dir', cpuProfileDir];
  runDriver(
    options,
    outDir,
    runFile,
    cpuProf,
    `2/2 '${options.workload}' with --cpu-prof (every thread, owners included)`,
  );

  const files = cpuProfileFiles(readdirSync(cpuProfileDir));
  const threads = files.map(({ file, threadId }) =>
    readThreadProfile(path.join(cpuProfileDir, file), threadId, repoRoot),
  );
  const names = threadNames(threads);
  const summaries: string[] = [`run: ${JSON.stringify(JSON.parse(readFileSync(runFile, 'utf8')))}`];
  threads.forEach((thread, i) => {
    const name = names[i]!;
    const busyMs = (thread.root.totalUs / 1000).toFixed(0);
    const idlePercent = thread.wallUs > 0 ? ((100 * thread.idleUs) / thread.wallUs).toFixed(0) : '0';
    const { svg, html } = renderFlamegraph(
      thread.root,
      `lightning-db '${options.workload}': ${name} (thread ${thread.threadId})`,
      `${busyMs} ms busy, ${idlePercent}% of the run idle (not drawn); width = sampled busy time, root at the bottom`,
    );
    writeFileSync(path.join(outDir, `${name}.html`), html);
    writeFileSync(path.join(outDir, `${name}.svg`), svg);
    writeFileSync(path.join(outDir, `${name}.folded`), foldedStacks(thread.root));
    summaries.push(threadSummary(name, thread));
  });
  const summary = `${summaries.join('\n\n')}\n`;
  writeFileSync(path.join(outDir, 'summary.txt'), summary);
  console.log(`\n${summary}`);
  console.log(`main thread (0x):        ${path.join(outDir, 'main-thread.0x.html')}`);
  console.log(`every thread (cpu-prof): ${names.map((name) => `${name}.html`).join(', ')}`);
  console.log(`profile written to ${path.relative(process.cwd(), outDir) || '.'}/`);
}

main();
