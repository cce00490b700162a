/**
 * The profile report's converter: a hand-built V8 CPU profile becomes the right call tree (self time
 * from the gaps between samples, idle time set aside), folded stacks, a top list by self time, and a
 * flamegraph whose boxes are as wide as their time and whose labels are escaped.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import {
  cpuProfileFiles,
  foldedStacks,
  readThreadProfile,
  topSelfTimes,
} from '../bench/profile/cpuprofile.js';
import { renderFlamegraph } from '../bench/profile/flamegraph.js';

const repoRoot = '/repo';
const tempDirs: string[] = [];
afterEach(() => {
  for (const dir of tempDirs.splice(0)) rmSync(dir, { recursive: true, force: true });
});

function frame(functionName: string, url = '', lineNumber = 0) {
  return { functionName, url, lineNumber, columnNumber: 0, scriptId: '0' };
}

/**
 * (root) → (idle); (root) → loop (owner-loop.js) → descend (btree.js) and → fdatasync (native);
 * (root) → (garbage collector). Sample i lasts until sample i+1: 100 µs each, except as noted.
 */
function writeProfile(): string {
  const dir = mkdtempSync(join(tmpdir(), 'lightning-cpuprofile-'));
  tempDirs.push(dir);
  const profile = {
    nodes: [
      { id: 1, callFrame: frame('(root)'), children: [2, 3, 6] },
      { id: 2, callFrame: frame('(idle)') },
      { id: 3, callFrame: frame('loop', 'file:///repo/dist/src/workers/owner-loop.js', 9), children: [4, 5] },
      { id: 4, callFrame: frame('descend <a&b>', 'file:///repo/dist/src/shared-memory/tree/btree.js', 41) },
      { id: 5, callFrame: frame('fdatasync') },
      { id: 6, callFrame: frame('(garbage collector)') },
    ],
    startTime: 1_000,
    endTime: 2_000,
    // Durations come from the next delta: 3 → 100, 4 → 300, 4 → 100, 5 → 200, 2 → 50, 6 → median.
    samples: [3, 4, 4, 5, 2, 6],
    timeDeltas: [0, 100, 300, 100, 200, 50],
  };
  const file = join(dir, 'CPU.20260101.120000.42.3.004.cpuprofile');
  writeFileSync(file, JSON.stringify(profile));
  return file;
}

describe('cpuProfileFiles', () => {
  it('keeps Node cpu profiles only, ordered by thread id', () => {
    const names = [
      'CPU.20260101.120000.42.10.011.cpuprofile',
      'notes.txt',
      'CPU.20260101.120000.42.0.001.cpuprofile',
      'CPU.20260101.120000.42.2.003.cpuprofile',
    ];
    expect(cpuProfileFiles(names).map((entry) => entry.threadId)).toEqual([0, 2, 10]);
  });
});

describe('readThreadProfile', () => {
  it('builds the tree from sample gaps and sets idle time aside', () => {
    const thread = readThreadProfile(writeProfile(), 3, repoRoot);
    expect(thread.threadId).toBe(3);
    expect(thread.isOwner).toBe(true);
    expect(thread.idleUs).toBe(50);
    expect(thread.wallUs).toBe(1000);
    // loop 100 + descend 400 + fdatasync 200 + gc (median of 100, 300, 100, 200, 50 = 100).
    expect(thread.root.totalUs).toBe(800);
    const loop = thread.root.children.get('loop (dist/src/workers/owner-loop.js:10)');
    expect(loop).toMatchObject({ kind: 'engine', totalUs: 700, selfUs: 100 });
    expect(loop!.children.get('descend <a&b> (dist/src/shared-memory/tree/btree.js:42)')).toMatchObject({
      selfUs: 400,
      totalUs: 400,
    });
    expect(loop!.children.get('fdatasync')).toMatchObject({ kind: 'native', selfUs: 200 });
    expect(thread.root.children.get('(garbage collector)')).toMatchObject({ kind: 'v8', selfUs: 100 });
  });

  it('writes folded stacks and ranks self time', () => {
    const thread = readThreadProfile(writeProfile(), 3, repoRoot);
    expect(foldedStacks(thread.root).trim().split('\n').sort()).toEqual([
      '(garbage collector) 100',
      'loop (dist/src/workers/owner-loop.js:10) 100',
      'loop (dist/src/workers/owner-loop.js:10);descend <a&b> (dist/src/shared-memory/tree/btree.js:42) 400',
      'loop (dist/src/workers/owner-loop.js:10);fdatasync 200',
    ]);
    expect(topSelfTimes(thread.root, 2).map((entry) => [entry.label, entry.selfUs])).toEqual([
      ['descend <a&b> (dist/src/shared-memory/tree/btree.js:42)', 400],
      ['fdatasync', 200],
    ]);
  });

  it('rejects a file that is not a CPU profile', () => {
    const dir = mkdtempSync(join(tmpdir(), 'lightning-cpuprofile-'));
    tempDirs.push(dir);
    writeFileSync(join(dir, 'x.cpuprofile'), '{"nodes": 1}');
    expect(() => readThreadProfile(join(dir, 'x.cpuprofile'), 0, repoRoot)).toThrow(/not a V8 CPU profile/);
  });
});

describe('renderFlamegraph', () => {
  it('draws each frame as wide as its share of the time, with escaped labels', () => {
    const thread = readThreadProfile(writeProfile(), 3, repoRoot);
    const { svg, html } = renderFlamegraph(thread.root, 'owner <1>', 'sub & title');
    const widths = new Map(
      [...svg.matchAll(/data-w="([\d.]+)" data-l="([^"]*)"/g)].map((match) => [match[2], Number(match[1])]),
    );
    expect(widths.get('all')).toBe(1200);
    expect(widths.get('loop (dist/src/workers/owner-loop.js:10)')).toBe(1050);
    expect(widths.get('descend &#60;a&#38;b&#62; (dist/src/shared-memory/tree/btree.js:42)')).toBe(600);
    expect(svg).toContain('owner &#60;1&#62;');
    expect(svg).not.toContain('<a&b>');
    expect(html.startsWith('<!doctype html>')).toBe(true);
    expect(html).toContain(svg);
  });
});
