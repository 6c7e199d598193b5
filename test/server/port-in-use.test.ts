import { spawn } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { projectRoot } from '../../src/db/migrations-folder.js';
import { entryArgs } from '../support/entry-args.js';

describe('starting on a port already in use', () => {
  let holder: Server;
  let port: number;
  let dataDir: string;
  beforeAll(async () => {
    dataDir = await mkdtemp(join(tmpdir(), 'drydock-port-in-use-'));
    holder = createServer();
    await new Promise<void>((resolve) => holder.listen(0, '127.0.0.1', resolve));
    port = (holder.address() as { port: number }).port;
  });
  afterAll(async () => {
    await new Promise((resolve) => holder.close(resolve));
    await rm(dataDir, { recursive: true, force: true });
  });

  it('exits with code 1 and writes only JSON lines on stderr (no plain-text dump from ws)', async () => {
    const child = spawn(process.execPath, entryArgs('src', 'main.ts'), {
      cwd: projectRoot,
      env: {
        PATH: process.env['PATH'] ?? '',
        PORT: String(port),
        HOST: '127.0.0.1',
        DATA_DIR: dataDir,
        LOG_FORMAT: 'json',
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stderr = '';
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    const code = await new Promise<number | null>((resolve) => child.once('exit', (exitCode) => resolve(exitCode)));
    expect(code).toBe(1);
    const lines = stderr.split('\n').filter((line) => line.trim() !== '');
    for (const line of lines) expect(() => JSON.parse(line) as unknown, line).not.toThrow();
    expect(stderr).not.toContain('Internal error emitted on the WebSocket server');
    const failure = lines.map((line) => JSON.parse(line) as Record<string, unknown>).at(-1);
    expect(failure).toMatchObject({ level: 'error', msg: expect.stringContaining('could not start') });
    expect(JSON.stringify(failure)).toContain('EADDRINUSE');
  }, 90_000);
});
