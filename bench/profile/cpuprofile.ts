/**
 * Reads the `.cpuprofile` files `node --cpu-prof` writes (one per thread, worker threads included; the
 * format is V8's Profile object of the Chrome DevTools protocol) and turns one into what the profile
 * report needs: a call tree with inclusive and self time per frame, folded stacks (the text format of
 * Brendan Gregg's flamegraph.pl), and the functions with the most self time.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';

/** The parts of a V8 CPU profile we use. */
interface CpuProfile {
  nodes: { id: number; callFrame: CallFrame; children?: number[] }[];
  startTime: number;
  endTime: number;
  samples: number[];
  timeDeltas: number[];
}

interface CallFrame {
  functionName: string;
  url: string;
  lineNumber: number;
  columnNumber: number;
}

/** What kind of code a frame runs; the flamegraph colors by it. */
export type FrameKind = 'engine' | 'bench' | 'node' | 'dependency' | 'v8' | 'native';

/** One frame of the merged call tree: every path from the root with the same labels is one frame. */
export interface Frame {
  label: string;
  kind: FrameKind;
  /** Sampled busy time in this frame, its callees included, in microseconds. */
  totalUs: number;
  /** Sampled busy time in this frame itself, in microseconds. */
  selfUs: number;
  children: Map<string, Frame>;
}

export interface ThreadProfile {
  /** Node's thread id from the file name: 0 is the main thread, workers count up in start order. */
  threadId: number;
  file: string;
  /** The root of the call tree, without idle time. */
  root: Frame;
  /** Time the thread sat in its event loop with nothing to run, in microseconds. */
  idleUs: number;
  /** Wall time the profile covers, in microseconds. */
  wallUs: number;
  /** True when any frame is the partition-owner worker's code. */
  isOwner: boolean;
}

export interface SelfTime {
  label: string;
  kind: FrameKind;
  selfUs: number;
}

const fileNamePattern = /^CPU\.\d+\.\d+\.(\d+)\.(\d+)\.(\d+)\.cpuprofile$/;
const ownerUrlPattern = /\/workers\/owner-(worker|loop)\.[jt]s$/;

/** The `.cpuprofile` files of one process, in thread-id order; Node names them CPU.<date>.<time>.<pid>.<tid>.<seq>. */
export function cpuProfileFiles(names: readonly string[]): { file: string; threadId: number }[] {
  return names
    .flatMap((file) => {
      const match = fileNamePattern.exec(file);
      return match === null ? [] : [{ file, threadId: Number(match[2]) }];
    })
    .sort((a, b) => a.threadId - b.threadId);
}

/** Reads one profile and builds its merged call tree; `repoRoot` shortens file paths in labels. */
export function readThreadProfile(file: string, threadId: number, repoRoot: string): ThreadProfile {
  const profile = JSON.parse(readFileSync(file, 'utf8')) as CpuProfile;
  if (
    !Array.isArray(profile.nodes) ||
    !Array.isArray(profile.samples) ||
    !Array.isArray(profile.timeDeltas)
  ) {
    throw new Error(`${file} is not a V8 CPU profile`);
  }
  const byId = new Map(profile.nodes.map((node) => [node.id, node]));
  const parentOf = new Map<number, number>();
  for (const node of profile.nodes) for (const child of node.children ?? []) parentOf.set(child, node.id);
  const selfUsById = sampleDurations(profile);

  const root = newFrame('all', 'v8');
  let idleUs = 0;
  let isOwner = false;
  for (const [id, selfUs] of selfUsById) {
    const stack: CallFrame[] = [];
    for (let at: number | undefined = id; at !== undefined; at = parentOf.get(at))
      stack.push(byId.get(at)!.callFrame);
    stack.reverse();
    // The first frame is V8's "(root)"; its children are the real entries.
    const frames = stack.slice(1);
    if (frames.length === 1 && frames[0]!.functionName === '(idle)') {
      idleUs += selfUs;
      continue;
    }
    let frame = root;
    frame.totalUs += selfUs;
    for (const callFrame of frames) {
      if (ownerUrlPattern.test(callFrame.url)) isOwner = true;
      const label = frameLabel(callFrame, repoRoot);
      let child = frame.children.get(label);
      if (child === undefined) {
        child = newFrame(label, frameKind(callFrame));
        frame.children.set(label, child);
      }
      child.totalUs += selfUs;
      frame = child;
    }
    frame.selfUs += selfUs;
  }
  return { threadId, file, root, idleUs, wallUs: profile.endTime - profile.startTime, isOwner };
}

/**
 * Self time of every profile node, from the gaps between samples: sample i stands for the time until
 * sample i+1 (the last one gets the median gap). Gaps are more exact than counting samples, since the
 * sampler's interval stretches when the thread is busy in native code.
 */
function sampleDurations(profile: CpuProfile): Map<number, number> {
  const { samples, timeDeltas } = profile;
  const sorted = timeDeltas.slice(1).sort((a, b) => a - b);
  const medianGap = sorted.length === 0 ? 0 : sorted[sorted.length >> 1]!;
  const selfUs = new Map<number, number>();
  for (let i = 0; i < samples.length; i++) {
    const gap = i + 1 < timeDeltas.length ? Math.max(0, timeDeltas[i + 1]!) : medianGap;
    selfUs.set(samples[i]!, (selfUs.get(samples[i]!) ?? 0) + gap);
  }
  return selfUs;
}

function newFrame(label: string, kind: FrameKind): Frame {
  return { label, kind, totalUs: 0, selfUs: 0, children: new Map() };
}

/** "descend (dist/src/shared-memory/tree/tree-reader.js:42)": the function and where it is defined. */
function frameLabel(frame: CallFrame, repoRoot: string): string {
  const name = frame.functionName === '' ? '(anonymous)' : frame.functionName;
  if (frame.url === '') return name;
  let where = frame.url;
  if (where.startsWith('file://'))
    where = path.relative(repoRoot, decodeURIComponent(new URL(where).pathname));
  return `${name} (${where}:${frame.lineNumber + 1})`;
}

function frameKind(frame: CallFrame): FrameKind {
  const url = frame.url;
  if (url === '') return frame.functionName.startsWith('(') ? 'v8' : 'native';
  if (url.startsWith('node:')) return 'node';
  if (url.includes('/node_modules/')) return 'dependency';
  if (/\/(dist\/)?bench\//.test(url)) return 'bench';
  if (/\/(dist\/)?src\//.test(url)) return 'engine';
  return 'dependency';
}

/** The tree as folded stacks, one line per distinct stack: "a;b;c <self microseconds>". */
export function foldedStacks(root: Frame): string {
  const lines: string[] = [];
  const walk = (frame: Frame, prefix: string): void => {
    const stack = prefix === '' ? frame.label : `${prefix};${frame.label}`;
    if (frame.selfUs > 0) lines.push(`${stack.replaceAll('\n', ' ')} ${Math.round(frame.selfUs)}`);
    for (const child of frame.children.values()) walk(child, stack);
  };
  for (const child of root.children.values()) walk(child, '');
  return `${lines.join('\n')}\n`;
}

/** The `count` labels with the most self time, summed over every place they occur in the tree. */
export function topSelfTimes(root: Frame, count: number): SelfTime[] {
  const totals = new Map<string, SelfTime>();
  const walk = (frame: Frame): void => {
    if (frame.selfUs > 0) {
      const entry = totals.get(frame.label) ?? { label: frame.label, kind: frame.kind, selfUs: 0 };
      entry.selfUs += frame.selfUs;
      totals.set(frame.label, entry);
    }
    for (const child of frame.children.values()) walk(child);
  };
  walk(root);
  return [...totals.values()].sort((a, b) => b.selfUs - a.selfUs).slice(0, count);
}
