import { spawn } from 'node:child_process';
import { expect, it } from 'vitest';
import { projectRoot } from '../../src/db/migrations-folder.js';
import { sourceEntry } from '../support/source-entry.js';

function migrate(env: Record<string, string>): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const child = spawn(process.execPath, sourceEntry('scripts', 'migrate.ts'), {
    cwd: projectRoot,
    env: { PATH: process.env['PATH'] ?? '', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
  child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  return new Promise((resolve) => child.once('exit', (code) => resolve({ code, stdout, stderr })));
}

it('npm run migrate against a database it cannot reach says so in one line, without the password', async () => {
  const result = await migrate({ DATABASE_URL: 'postgresql://deploy:hunter2-secret@127.0.0.1:1/drydock' });
  expect(result.code).toBe(1);
  expect(result.stdout).toBe('');
  expect(result.stderr.trim().split('\n')).toEqual([
    'could not migrate PostgreSQL at postgresql://deploy:***@127.0.0.1:1/drydock: connect ECONNREFUSED 127.0.0.1:1',
  ]);
  expect(result.stderr).not.toContain('hunter2-secret');
});

it('a setting it cannot read is exit code 2 with the setting named', async () => {
  const result = await migrate({ DATABASE_URL: 'mysql://somewhere/drydock' });
  expect(result.code).toBe(2);
  expect(result.stderr).toContain('DATABASE_URL');
  expect(result.stderr).not.toContain('    at ');
});
