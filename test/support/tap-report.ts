/** What a tape run's TAP output says: its tests, assertions, and the failed ones by test. */
export interface TapReport {
  /** `test()` blocks that ran (their "# name" headers). */
  tests: number;
  assertions: number;
  passed: number;
  failed: number;
  /** "test name: assertion name" of every failed assertion. */
  failures: string[];
  /** The plan line ("1..N") was printed: tape reached its end. */
  finished: boolean;
}

/** Reads a tape run's TAP output; counts are taken from the lines, not from tape's own summary. */
export function parseTap(output: string): TapReport {
  const report: TapReport = { tests: 0, assertions: 0, passed: 0, failed: 0, failures: [], finished: false };
  let testName = '';
  for (const line of output.split('\n')) {
    if (/^1\.\.\d+$/.test(line)) {
      report.finished = true;
    } else if (line.startsWith('# ') && !report.finished) {
      testName = line.slice(2);
      report.tests++;
    } else if (line.startsWith('ok ')) {
      report.assertions++;
      report.passed++;
    } else if (line.startsWith('not ok ')) {
      report.assertions++;
      report.failed++;
      report.failures.push(`${testName}: ${line.replace(/^not ok \d+ /, '')}`);
    }
  }
  return report;
}
