import { spawn } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { projectRoot } from '../src/db/migrations-folder.js';
import { waitFor } from './support/wait.js';

// The README starts the server with `npm start`; a supervisor (docker stop, systemd) then stops it
// with SIGTERM to the process it started, npm. The server itself must get it and stop, lock and all.
describe('npm start, stopped with SIGTERM', () => {
  let dir: string | undefined;
  let serverPid: number | undefined;
  afterAll(async () => {
    if (serverPid !== undefined && existsSync(`/proc/${serverPid}`)) process.kill(serverPid, 'SIGKILL');
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it('stops the server, not only npm', async () => {
    dir = await mkdtemp(join(tmpdir(), 'drydock-npm-start-'));
    const npm = spawn('npm', ['start'], {
      cwd: projectRoot,
      env: { ...process.env, PORT: '0', DATA_DIR: join(dir, 'pglite'), LOG_LEVEL: 'info' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let output = '';
    npm.stdout.on('data', (chunk: Buffer) => (output += chunk.toString()));
    npm.stderr.on('data', (chunk: Buffer) => (output += chunk.toString()));
    const npmExited = new Promise((resolve) => npm.once('exit', resolve));
    await waitFor(() => /drydock listening on/.test(output), 60_000);
    serverPid = Number(/"pid":(\d+)/.exec(output)?.[1]);
    expect(serverPid).toBeGreaterThan(0);
    expect(serverPid).not.toBe(npm.pid);

    npm.kill('SIGTERM');
    await npmExited;
    await waitFor(() => !existsSync(`/proc/${serverPid}`) || /State:\s+Z/.test(procStatus(serverPid!)), 15_000);
    expect(output).toMatch(/SIGTERM: shutting down/);
    expect(existsSync(join(dir, 'pglite', 'drydock.lock'))).toBe(false);
  }, 90_000);
});

function procStatus(pid: number): string {
  try {
    return readFileSync(`/proc/${pid}/status`, 'utf8');
  } catch {
    return 'State: Z';
  }
}
