import { join } from 'node:path';
import { projectRoot } from '../../src/db/migrations-folder.js';

/**
 * Node arguments that run a TypeScript entry point of this repository from source. Tests spawn the
 * sources (through tsx) so they always test the code as edited, never a stale dist/; the bench and
 * `npm start` run the compiled build.
 */
export function sourceEntry(...path: string[]): string[] {
  return ['--import', 'tsx', join(projectRoot, ...path)];
}
