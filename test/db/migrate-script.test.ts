import { expect, it } from 'vitest';
import { runToEnd } from '../support/process.js';
import { entryArgs } from '../support/entry-args.js';

const migrate = (env: Record<string, string>) => runToEnd(process.execPath, entryArgs('scripts', 'migrate.ts'), env);

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
