/**
 * Draws a call tree as a flamegraph: one self-contained SVG (tooltips, no script) and one HTML page
 * with the same SVG plus a few lines of script to zoom into a frame (click) and highlight frames
 * matching a search. Width is sampled busy time; the root is at the bottom and callees stack on top.
 */
import type { Frame, FrameKind } from './cpuprofile.js';

const widthPx = 1200;
const frameHeightPx = 17;
const headerPx = 44;
const footerPx = 8;
/** Frames narrower than this are left out: invisible, and a long profile has tens of thousands. */
const minWidthPx = 0.3;
const charWidthPx = 6.6;

/** A color family per kind of code, so the engine's own frames stand out from Node and V8. */
const hues: Record<FrameKind, [number, number]> = {
  engine: [10, 30],
  bench: [45, 55],
  node: [95, 120],
  dependency: [185, 205],
  v8: [0, 0],
  native: [270, 290],
};

interface Placed {
  frame: Frame;
  xPx: number;
  widthPx: number;
  depth: number;
}

export interface FlamegraphText {
  svg: string;
  html: string;
}

/** Renders `root` (its total is 100% of the width); `title` and `subtitle` head the picture. */
export function renderFlamegraph(root: Frame, title: string, subtitle: string): FlamegraphText {
  const placed: Placed[] = [];
  const scale = root.totalUs > 0 ? widthPx / root.totalUs : 0;
  const place = (frame: Frame, xPx: number, depth: number): void => {
    const frameWidthPx = frame.totalUs * scale;
    if (frameWidthPx < minWidthPx) return;
    placed.push({ frame, xPx, widthPx: frameWidthPx, depth });
    let childX = xPx;
    const children = [...frame.children.values()].sort((a, b) => a.label.localeCompare(b.label));
    for (const child of children) {
      place(child, childX, depth + 1);
      childX += child.totalUs * scale;
    }
  };
  place(root, 0, 0);
  const maxDepth = placed.reduce((max, p) => Math.max(max, p.depth), 0);
  const heightPx = headerPx + (maxDepth + 1) * frameHeightPx + footerPx;
  const rects = placed.map((p) => frameSvg(p, root.totalUs, heightPx)).join('\n');
  const svg =
    `<svg xmlns="http://www.w3.org/2000/svg" width="${widthPx}" height="${heightPx}" viewBox="0 0 ${widthPx} ${heightPx}" font-family="Verdana, sans-serif" font-size="11">\n` +
    `<rect width="100%" height="100%" fill="#f8f8f4"/>\n` +
    `<text x="${widthPx / 2}" y="17" font-size="15" text-anchor="middle">${escapeXml(title)}</text>\n` +
    `<text x="${widthPx / 2}" y="34" fill="#555" text-anchor="middle">${escapeXml(subtitle)}</text>\n` +
    `${rects}\n</svg>\n`;
  return { svg, html: htmlPage(title, svg) };
}

function frameSvg(p: Placed, rootUs: number, heightPx: number): string {
  const y = heightPx - footerPx - (p.depth + 1) * frameHeightPx;
  const percent = rootUs > 0 ? (100 * p.frame.totalUs) / rootUs : 0;
  const tip = `${p.frame.label}\n${(p.frame.totalUs / 1000).toFixed(1)} ms (${percent.toFixed(2)}%), self ${(p.frame.selfUs / 1000).toFixed(1)} ms`;
  return (
    `<g class="f" data-x="${p.xPx.toFixed(2)}" data-w="${p.widthPx.toFixed(2)}" data-l="${escapeXml(p.frame.label)}">` +
    `<title>${escapeXml(tip)}</title>` +
    `<rect x="${p.xPx.toFixed(2)}" y="${y}" width="${Math.max(0, p.widthPx - 0.5).toFixed(2)}" height="${frameHeightPx - 1}" rx="2" fill="${color(p.frame)}"/>` +
    `<text x="${(p.xPx + 3).toFixed(2)}" y="${y + frameHeightPx - 5}">${escapeXml(fit(p.frame.label, p.widthPx))}</text></g>`
  );
}

/** A stable color per label within its kind's hue range, so the same function keeps its color. */
function color(frame: Frame): string {
  const [low, high] = hues[frame.kind];
  let hash = 0;
  for (let i = 0; i < frame.label.length; i++) hash = (Math.imul(hash, 31) + frame.label.charCodeAt(i)) | 0;
  const unit = (hash >>> 0) / 0x1_0000_0000;
  if (frame.kind === 'v8') return `hsl(0, 0%, ${Math.round(70 + unit * 12)}%)`;
  return `hsl(${Math.round(low + unit * (high - low))}, ${Math.round(65 + unit * 20)}%, ${Math.round(60 + unit * 10)}%)`;
}

function fit(label: string, frameWidthPx: number): string {
  const chars = Math.floor((frameWidthPx - 6) / charWidthPx);
  if (chars < 3) return '';
  return label.length <= chars ? label : `${label.slice(0, chars - 2)}..`;
}

function escapeXml(text: string): string {
  return text.replace(/[<>&"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

/** The SVG inside a page with click-to-zoom (click the bottom frame to zoom out) and a search box. */
function htmlPage(title: string, svg: string): string {
  const script = `
const W = ${widthPx}, CW = ${charWidthPx};
const frames = [...document.querySelectorAll('g.f')].map((g) => ({ g, x: +g.dataset.x, w: +g.dataset.w, l: g.dataset.l,
  rect: g.querySelector('rect'), text: g.querySelector('text') }));
function fit(l, w) { const n = Math.floor((w - 6) / CW); return n < 3 ? '' : l.length <= n ? l : l.slice(0, n - 2) + '..'; }
function zoom(x0, w0) {
  for (const f of frames) {
    const a = Math.max(f.x, x0), b = Math.min(f.x + f.w, x0 + w0);
    if (b - a < 0.01) { f.g.style.display = 'none'; continue; }
    const x = ((a - x0) / w0) * W, w = ((b - a) / w0) * W;
    f.g.style.display = ''; f.rect.setAttribute('x', x); f.rect.setAttribute('width', Math.max(0, w - 0.5));
    f.text.setAttribute('x', x + 3); f.text.textContent = fit(f.l, w);
  }
}
for (const f of frames) f.g.addEventListener('click', () => zoom(f.x, f.w));
document.getElementById('search').addEventListener('input', (event) => {
  let re = null; try { re = event.target.value ? new RegExp(event.target.value, 'i') : null; } catch {}
  const hits = [];
  for (const f of frames) {
    const hit = re !== null && re.test(f.l);
    f.rect.style.stroke = hit ? '#c0f' : ''; f.rect.style.strokeWidth = hit ? '2' : '';
    if (hit) hits.push([f.x, f.x + f.w]);
  }
  // A frame and its callees overlap; the union of the matched spans is the share of the time.
  hits.sort((a, b) => a[0] - b[0]);
  let matched = 0, end = -1;
  for (const [a, b] of hits) { if (b > end) { matched += b - Math.max(a, end); end = b; } }
  document.getElementById('matched').textContent = re ? (100 * matched / W).toFixed(1) + '% of the width matches' : '';
});`;
  return `<!doctype html>
<html><head><meta charset="utf-8"><title>${escapeXml(title)}</title>
<style>body{margin:8px;font:13px Verdana,sans-serif} g.f{cursor:pointer} g.f:hover rect{stroke:#000;stroke-width:.5}</style>
</head><body>
<p>Click a frame to zoom into it; click the bottom frame to zoom out. Search (regular expression):
<input id="search" size="40"> <span id="matched"></span></p>
${svg}
<script>${script}</script>
</body></html>
`;
}
