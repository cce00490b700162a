/** Small helpers to print aligned plain-text tables (no dependency, copy-pasteable into issues). */

/** `align` has one letter per column: 'l' pads on the right (text), anything else on the left (numbers). */
export function formatTable(headers: string[], rows: string[][], align: string): string {
  const widths = headers.map((header, column) =>
    Math.max(header.length, ...rows.map((row) => (row[column] ?? '').length)),
  );
  const line = (cells: string[]): string =>
    cells
      .map((cell, column) =>
        align[column] === 'l' ? cell.padEnd(widths[column]) : cell.padStart(widths[column]),
      )
      .join('  ')
      .trimEnd();
  const rule = widths.map((width) => '-'.repeat(width)).join('  ');
  return [line(headers), rule, ...rows.map(line)].join('\n');
}

/** 1234567.8 -> "1,234,568": whole numbers with separators read fastest for ops/s. */
export function formatCount(value: number): string {
  return Math.round(value).toLocaleString('en-US');
}

export function formatFixed(value: number, digits: number): string {
  return value.toLocaleString('en-US', { minimumFractionDigits: digits, maximumFractionDigits: digits });
}

export function formatRatio(value: number): string {
  return Number.isFinite(value) ? `${value.toFixed(2)}x` : '-';
}

export function hex32(value: number): string {
  return (value >>> 0).toString(16).padStart(8, '0');
}

/** Operations per CPU-second of the whole process: what an operation costs, whatever the wall time. */
export function perCpuSecond(amount: number, cpuSeconds: number): number {
  return cpuSeconds > 0 ? amount / cpuSeconds : Number.NaN;
}

/** The figures every report prints side by side: ops/s, ops per CPU-second, and cores busy. */
export function throughputCells(amount: number, seconds: number, cpuSeconds: number): string[] {
  const perCpu = perCpuSecond(amount, cpuSeconds);
  return [
    formatCount(amount / seconds),
    Number.isFinite(perCpu) ? formatCount(perCpu) : '-',
    formatFixed(cpuSeconds / seconds, 2),
  ];
}
