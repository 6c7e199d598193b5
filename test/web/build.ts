import { join } from 'node:path';
import { build } from 'vite';
import { projectRoot } from '../../src/db/migrations-folder.js';

export const playgroundDir = join(projectRoot, 'web-playground');

/** Builds the page from the current sources, as `npm run web:build` does, so the test never sees a stale bundle. */
export async function buildPlayground(): Promise<void> {
  await build({ configFile: join(playgroundDir, 'vite.config.ts'), logLevel: 'warn' });
}
