/** Text output shared by the commands: LSN ranges, aligned tables, JSON. */

/** `first-last`, one number when they are equal, `-` when there is no record. */
export function lsnRange(first: number | bigint | null, last: number | bigint | null): string {
  if (first === null || last === null) return '-';
  return first === last ? String(first) : `${first}-${last}`;
}

/** Pads cells to column widths: numbers right-aligned (so digits line up), text left-aligned. */
export function formatTable(rows: readonly (readonly (string | number)[])[]): string[] {
  const widths: number[] = [];
  for (const row of rows) {
    for (const [i, cell] of row.entries()) widths[i] = Math.max(widths[i] ?? 0, String(cell).length);
  }
  return rows.map((row) =>
    row
      .map((cell, i) =>
        typeof cell === 'number' ? String(cell).padStart(widths[i]!) : cell.padEnd(widths[i]!),
      )
      .join('  ')
      .trimEnd(),
  );
}

/** Pretty JSON and a newline; bigints (timestamps, LSNs) become decimal strings, as JSON has no u64. */
export function jsonText(value: unknown): string {
  return `${JSON.stringify(value, (_, field: unknown) => (typeof field === 'bigint' ? field.toString() : field), 2)}\n`;
}
