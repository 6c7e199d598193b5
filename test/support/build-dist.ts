import { execFile } from 'node:child_process';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { projectRoot } from '../../src/db/migrations-folder.js';

const tsc = join(createRequire(import.meta.url).resolve('typescript/package.json'), '..', 'bin', 'tsc');

/**
 * Vitest's global set-up: compiles src/ to dist/ (`npm run build`'s compiler step, incremental, so a
 * build that is up to date costs a few seconds) before any test spawns the server or the command
 * line from dist/ (entry-args.ts). Type errors do not stop the tests, as they did not when processes
 * ran the sources through tsx: tsc still writes the output, and `npm run check` is what judges types.
 */
export default async function buildDist(): Promise<void> {
  await new Promise<void>((resolve, reject) => {
    execFile(process.execPath, [tsc, '-p', 'tsconfig.build.json'], { cwd: projectRoot }, (error, stdout) => {
      if (error === null) return resolve();
      // Exit code 2: errors found, output written anyway. Anything else (1: a bad tsconfig, or a
      // signal) wrote nothing a test could run.
      if (error.code === 2) {
        process.stderr.write(`tsc reported type errors; spawned servers and CLIs run what it wrote:\n${stdout}`);
        return resolve();
      }
      reject(new Error(`compiling src/ to dist/ failed (${error.message}):\n${stdout}`));
    });
  });
}
