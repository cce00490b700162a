/**
 * A small reader of the Prometheus text exposition format (version 0.0.4), enough to check what the
 * admin server exports: samples with labels, and the TYPE declared for each metric family.
 */

export interface Sample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

export interface Exposition {
  samples: Sample[];
  /** Metric family name -> its # TYPE. */
  types: Map<string, string>;
}

const samplePattern = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})?\s+(\S+)$/;
const labelPattern = /([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g;

export function parseExposition(text: string): Exposition {
  const samples: Sample[] = [];
  const types = new Map<string, string>();
  for (const line of text.split('\n')) {
    if (line.trim() === '') continue;
    if (line.startsWith('# TYPE ')) {
      const [name, type] = line.slice('# TYPE '.length).split(' ');
      types.set(name!, type!);
      continue;
    }
    if (line.startsWith('#')) continue;
    const match = samplePattern.exec(line);
    if (match === null) throw new Error(`not a sample line: ${JSON.stringify(line)}`);
    const labels: Record<string, string> = {};
    for (const [, key, value] of (match[2] ?? '').matchAll(labelPattern)) {
      labels[key!] = value!.replace(/\\(.)/g, (_, c: string) => (c === 'n' ? '\n' : c));
    }
    const raw = match[3]!;
    const value = raw === '+Inf' ? Infinity : raw === '-Inf' ? -Infinity : Number(raw);
    if (Number.isNaN(value) && raw !== 'NaN') throw new Error(`bad value in ${JSON.stringify(line)}`);
    samples.push({ name: match[1]!, labels, value });
  }
  return { samples, types };
}

/** The samples named `name` whose labels include every label of `where`. */
export function select(exposition: Exposition, name: string, where: Record<string, string> = {}): Sample[] {
  return exposition.samples.filter(
    (sample) =>
      sample.name === name && Object.entries(where).every(([key, value]) => sample.labels[key] === value),
  );
}

/** The sum of the selected samples' values (0 if none). */
export function total(exposition: Exposition, name: string, where: Record<string, string> = {}): number {
  return select(exposition, name, where).reduce((sum, sample) => sum + sample.value, 0);
}
