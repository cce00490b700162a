/**
 * A package-lock.json for a consumer project that depends on this package's tarball, built from the
 * repository's own lock file so that `npm install --offline` can install it from npm's cache.
 *
 * `npm ci` in the repository downloads tarballs by the URLs and integrity hashes in the lock file and
 * never fetches the registry's metadata documents (packuments). Installing a tarball into a project
 * without a lock file must resolve every semver range of its dependencies, which needs those
 * documents, so `--offline` fails with ENOTCACHED. With this lock every dependency is already
 * resolved, to the versions the repository is tested with, and only their cached tarballs are read.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';

interface LockEntry {
  version?: string;
  dependencies?: Record<string, string>;
  optionalDependencies?: Record<string, string>;
  peerDependencies?: Record<string, string>;
  [field: string]: unknown;
}

export interface PackageManifest {
  name: string;
  version: string;
  dependencies?: Record<string, string>;
  peerDependencies?: Record<string, string>;
  bin?: Record<string, string>;
  engines?: Record<string, string>;
  license?: string;
}

/** The lock path a package named `name` resolves to from the package installed at `from`, as Node looks it up. */
function resolveIn(packages: Record<string, LockEntry>, from: string, name: string): string | undefined {
  let directory = from;
  for (;;) {
    const candidate = `${directory === '' ? '' : `${directory}/`}node_modules/${name}`;
    if (packages[candidate] !== undefined) return candidate;
    if (directory === '') return undefined;
    const parent = directory.lastIndexOf('/node_modules/');
    directory = parent < 0 ? '' : directory.slice(0, parent);
  }
}

/**
 * The lock of a project named `projectName` whose one dependency is `manifest` (this package) at
 * `tarballSpec` (a `file:` specifier): the package's dependencies and peer dependencies with all they
 * need, at the paths and versions of the repository's lock.
 */
export function consumerLock(
  repoRoot: string,
  manifest: PackageManifest,
  projectName: string,
  tarballSpec: string,
): object {
  const repoLock = JSON.parse(readFileSync(join(repoRoot, 'package-lock.json'), 'utf8')) as {
    packages: Record<string, LockEntry>;
  };
  const packages = repoLock.packages;
  const closure: Record<string, LockEntry> = {};
  const pending = [
    ...Object.keys(manifest.dependencies ?? {}),
    ...Object.keys(manifest.peerDependencies ?? {}),
  ].map((name) => {
    const path = resolveIn(packages, '', name);
    if (path === undefined) throw new Error(`${name} is not in the repository's package-lock.json`);
    return path;
  });
  for (let path = pending.pop(); path !== undefined; path = pending.pop()) {
    if (closure[path] !== undefined) continue;
    // The flags say how the repository uses a package (a dev dependency, say); npm recomputes them
    // for the consumer's tree.
    const { dev: _dev, devOptional: _devOptional, peer: _peer, ...entry } = packages[path]!;
    closure[path] = entry;
    for (const name of [
      ...Object.keys(entry.dependencies ?? {}),
      ...Object.keys(entry.optionalDependencies ?? {}),
    ]) {
      const found = resolveIn(packages, path, name);
      if (found !== undefined) pending.push(found);
    }
  }
  return {
    name: projectName,
    lockfileVersion: 3,
    requires: true,
    packages: {
      '': { name: projectName, dependencies: { [manifest.name]: tarballSpec } },
      [`node_modules/${manifest.name}`]: {
        version: manifest.version,
        resolved: tarballSpec,
        license: manifest.license,
        dependencies: manifest.dependencies,
        peerDependencies: manifest.peerDependencies,
        bin: manifest.bin,
        engines: manifest.engines,
      },
      ...closure,
    },
  };
}
