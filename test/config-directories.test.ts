import { spawn } from 'node:child_process';
import { chmod, mkdir, mkdtemp, readdir, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../src/config.js';
import { projectRoot } from '../src/db/migrations-folder.js';
import { checkDirectories, startFailure, UnusableDirectoryError } from '../src/start-failure.js';
import { entryArgs } from './support/entry-args.js';

// A directory the server cannot use is refused at start, in one line naming its variable: not
// found late, by a spinning mkdir, a stack, or the first ssh command.

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'drydock-config-dirs-'));
  await writeFile(join(dir, 'file'), 'x');
  // No write permission at all: root's processes write there, but PGlite (which checks the
  // bits itself) does not.
  await mkdir(join(dir, 'read-only'), { mode: 0o555 });
  await chmod(join(dir, 'read-only'), 0o555);
});
afterAll(async () => {
  await chmod(join(dir, 'read-only'), 0o755);
  await rm(dir, { recursive: true, force: true });
});

async function refusal(env: Record<string, string>): Promise<string | undefined> {
  const config = loadConfig(env);
  try {
    await checkDirectories(config);
  } catch (error) {
    expect(error).toBeInstanceOf(UnusableDirectoryError);
    return startFailure(error, config);
  }
  return undefined;
}

describe('checkDirectories', () => {
  it('refuses a DATA_DIR under /proc, under a file, that is a file, or that nobody may write', async () => {
    const creatable = 'point DATA_DIR at a directory this process can create and write';
    expect(await refusal({ DATA_DIR: '/proc/drydock-data' })).toBe(
      `DATA_DIR /proc/drydock-data cannot be created (ENOENT: this file system does not allow it there): ${creatable}`,
    );
    expect(await refusal({ DATA_DIR: join(dir, 'file', 'pglite') })).toBe(
      `DATA_DIR ${join(dir, 'file', 'pglite')} cannot be created (ENOTDIR: a part of that path is a file): ${creatable}`,
    );
    expect(await refusal({ DATA_DIR: join(dir, 'file') })).toBe(
      `DATA_DIR ${join(dir, 'file')} cannot be created (ENOTDIR: a part of that path is a file): ${creatable}`,
    );
    expect(await refusal({ DATA_DIR: join(dir, 'read-only') })).toBe(
      `DATA_DIR ${join(dir, 'read-only')} is not writable (permissions 555): make it writable by this process or point DATA_DIR at another directory`,
    );
  });

  it('creates a missing DATA_DIR, leaves nothing of its own in it, and ignores it with DATABASE_URL', async () => {
    const data = join(dir, 'new', 'pglite');
    expect(await refusal({ DATA_DIR: data })).toBeUndefined();
    expect(await readdir(data)).toEqual([]);
    expect(
      await refusal({ DATA_DIR: '/proc/drydock-data', DATABASE_URL: 'postgresql://app@db.example/drydock' }),
    ).toBeUndefined();
  });

  it('checks SSH_STATE_DIR only when set, and holds it to what the ssh transport needs', async () => {
    const data = join(dir, 'data');
    expect(await refusal({ DATA_DIR: data, SSH_STATE_DIR: '' })).toBeUndefined();
    expect(await refusal({ DATA_DIR: data, SSH_STATE_DIR: '/proc/drydock-ssh' })).toBe(
      'SSH_STATE_DIR /proc/drydock-ssh cannot be created (ENOENT: this file system does not allow it there): point SSH_STATE_DIR at a directory this process can create and write',
    );
    const shared = join(dir, 'shared');
    await mkdir(shared);
    await chmod(shared, 0o775);
    expect(await refusal({ DATA_DIR: data, SSH_STATE_DIR: shared })).toBe(
      `SSH_STATE_DIR ${shared} must belong to this user and be writable by no one else, as it holds the trusted ssh host keys: chown it to this user and chmod go-w it, or point SSH_STATE_DIR elsewhere`,
    );
    const own = join(dir, 'ssh', 'state');
    expect(await refusal({ DATA_DIR: data, SSH_STATE_DIR: own })).toBeUndefined();
    expect((await stat(own)).mode & 0o777).toBe(0o700);
    expect((await stat(join(dir, 'ssh'))).mode & 0o777).toBe(0o700);
  });
});

describe('a server started with an unusable directory', () => {
  // The deadline is the check: before, a DATA_DIR under /proc kept the process busy forever.
  const start = (env: Record<string, string>) =>
    new Promise<{ code: number | null; output: string }>((resolve) => {
      const child = spawn(process.execPath, entryArgs('src', 'main.ts'), {
        cwd: projectRoot,
        env: { PATH: process.env['PATH'] ?? '', PORT: '0', DATA_DIR: join(dir, 'process-data'), ...env },
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      const deadline = setTimeout(() => child.kill('SIGKILL'), 30_000);
      let output = '';
      child.stdout.on('data', (chunk: Buffer) => (output += chunk.toString()));
      child.stderr.on('data', (chunk: Buffer) => (output += chunk.toString()));
      child.once('close', (code) => {
        clearTimeout(deadline);
        resolve({ code, output });
      });
    });
  const failure = (output: string) =>
    output
      .split('\n')
      .filter((line) => line.includes('could not start'))
      .map((line) => (JSON.parse(line) as { msg: string }).msg);

  it('exits at once with one line naming DATA_DIR, exit code 1', async () => {
    for (const [data, line] of [
      [
        '/proc/drydock-data',
        'DATA_DIR /proc/drydock-data cannot be created (ENOENT: this file system does not allow it there)',
      ],
      [join(dir, 'file', 'pglite'), `DATA_DIR ${join(dir, 'file', 'pglite')} cannot be created (ENOTDIR`],
      [join(dir, 'read-only'), `DATA_DIR ${join(dir, 'read-only')} is not writable (permissions 555)`],
    ] as const) {
      const { code, output } = await start({ DATA_DIR: data });
      expect(code, output).toBe(1);
      const lines = failure(output);
      expect(lines, output).toHaveLength(1);
      expect(lines[0]).toContain(`could not start: ${line}`);
      expect(output).not.toMatch(/\n\s+at /);
    }
  }, 120_000);

  it('exits at once with one line naming SSH_STATE_DIR when it is set and unusable', async () => {
    const { code, output } = await start({ SSH_STATE_DIR: '/proc/drydock-ssh' });
    expect(code, output).toBe(1);
    expect(failure(output)).toEqual([
      'could not start: SSH_STATE_DIR /proc/drydock-ssh cannot be created (ENOENT: this file system does not allow it there): point SSH_STATE_DIR at a directory this process can create and write',
    ]);
  }, 60_000);
});
