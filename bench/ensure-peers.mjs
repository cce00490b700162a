// Installs the benchmark peers (bench/package.json) into bench/node_modules when any is missing, so a
// plain `npm install` of the repository skips them and their native builds. Run by `npm run bench*`
// before the build; a no-op once they are installed.
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const benchDir = dirname(fileURLToPath(import.meta.url));
const manifest = JSON.parse(readFileSync(join(benchDir, 'package.json'), 'utf8'));
const missing = Object.keys(manifest.dependencies).filter(
  (name) => !existsSync(join(benchDir, 'node_modules', name, 'package.json')),
);
if (missing.length > 0) {
  console.log(`benchmark peers missing from bench/node_modules (${missing.join(', ')}): installing them`);
  const npm = process.platform === 'win32' ? 'npm.cmd' : 'npm';
  const result = spawnSync(npm, ['install', '--prefix', benchDir, '--no-audit', '--no-fund'], {
    stdio: 'inherit',
  });
  if (result.status !== 0) {
    console.error(`npm install --prefix bench failed (${result.error?.message ?? `exit ${result.status}`})`);
    process.exit(1);
  }
}
