import { join } from 'node:path';
import { projectRoot } from '../../src/db/migrations-folder.js';

/**
 * Node arguments that run an entry point of this repository in a process of its own. The server
 * and the command line (under src/) run compiled, from dist/, as `npm start` and the `drydock` bin
 * do: the suite's global set-up (build-dist.ts) compiles the sources first, so a test never runs a
 * stale build, and a process does not pay for compiling its whole module graph as it starts, as it
 * did through tsx. Entry points outside the build (test/, scripts/) still run through tsx.
 */
export function entryArgs(...path: string[]): string[] {
  const [top, ...rest] = path;
  if (top === 'src') return [join(projectRoot, 'dist', ...rest).replace(/\.ts$/, '.js')];
  return ['--import', 'tsx', join(projectRoot, ...path)];
}
