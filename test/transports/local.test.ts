import { existsSync, readFileSync } from 'node:fs';
import { mkdtemp, realpath, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { localTransport } from '../../src/transports/local.js';
import type { OutputStream } from '../../src/transports/transport.js';

/**
 * Whether a process still runs. A killed child whose parent died waits as a zombie until init
 * reaps it, which some containers' init does only now and then: a zombie counts as dead.
 */
function alive(pid: number): boolean {
  if (existsSync('/proc/self/stat')) {
    try {
      const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
      return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3) !== 'Z';
    } catch {
      return false;
    }
  }
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

async function until(check: () => boolean, timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error('condition not met in time');
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

describe('the local transport', () => {
  const transport = localTransport();
  let dir: string;
  beforeAll(async () => {
    dir = await realpath(await mkdtemp(join(tmpdir(), 'drydock-local-test-')));
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('streams output as it is written, and returns it with the exit code', async () => {
    const seen: { stream: OutputStream; chunk: string; at: number }[] = [];
    const result = await transport.run({
      argv: ['sh', '-c', 'echo one; echo two >&2; sleep 0.5; echo three; exit 3'],
      onOutput: (stream, chunk) => seen.push({ stream, chunk, at: Date.now() }),
    });
    const finishedAt = Date.now();
    expect(result).toEqual({ exitCode: 3, stdout: 'one\nthree\n', stderr: 'two\n', timedOut: false });
    expect(seen.filter((s) => s.stream === 'stdout').map((s) => s.chunk)).toEqual(['one\n', 'three\n']);
    expect(seen.filter((s) => s.stream === 'stderr').map((s) => s.chunk)).toEqual(['two\n']);
    // "one" arrived while the command was still sleeping, not when it ended.
    expect(finishedAt - seen[0]!.at).toBeGreaterThanOrEqual(400);
  });

  it('hands argv to the program as it is: no shell expands, splits or chains anything', async () => {
    const tricky = ['$HOME', '`id`', '$(id)', 'a; echo pwned', '*', "it's", '"quoted"', 'two words', '', 'line\nbreak'];
    const result = await transport.run({ argv: ['printf', '[%s]\n', ...tricky] });
    expect(result.exitCode).toBe(0);
    expect(result.stdout).toBe(tricky.map((word) => `[${word}]\n`).join(''));
  });

  it('reports exit codes the way a shell does: the program, 127 when missing, 128+N when killed by signal N', async () => {
    expect((await transport.run({ argv: ['false'] })).exitCode).toBe(1);
    const missing = await transport.run({ argv: ['drydock-no-such-program'] });
    expect(missing.exitCode).toBe(127);
    expect(missing.stderr).toMatch(/cannot run "drydock-no-such-program": .*ENOENT/);
    expect((await transport.run({ argv: ['sh', '-c', 'kill -9 $$'] })).exitCode).toBe(137);
  });

  it('runs in the given directory, and says so when the directory does not exist', async () => {
    expect((await transport.run({ argv: ['pwd'], cwd: dir })).stdout).toBe(`${dir}\n`);
    const missing = await transport.run({ argv: ['pwd'], cwd: join(dir, 'nowhere') });
    expect(missing.exitCode).toBe(126);
    expect(missing.stderr).toContain(`the directory ${join(dir, 'nowhere')} does not exist`);
  });

  it("passes the given environment but none of the server's secrets", async () => {
    process.env['DRYDOCK_TEST_SECRET'] = 'database-password';
    try {
      const result = await transport.run({ argv: ['env'], env: { GREETING: 'hello world' } });
      expect(result.stdout).toContain('GREETING=hello world\n');
      expect(result.stdout).toMatch(/^PATH=/m);
      expect(result.stdout).not.toContain('DRYDOCK_TEST_SECRET');
    } finally {
      delete process.env['DRYDOCK_TEST_SECRET'];
    }
  });

  it('kills the whole process group on timeout, background children included', async () => {
    const started = Date.now();
    const result = await transport.run({
      argv: ['sh', '-c', 'sleep 30 & echo $!; wait'],
      timeoutMs: 300,
    });
    expect(Date.now() - started).toBeLessThan(5_000);
    expect(result).toMatchObject({ exitCode: null, timedOut: true });
    const childPid = Number(result.stdout.trim());
    expect(childPid).toBeGreaterThan(0);
    await until(() => !alive(childPid));
  });

  it('follows SIGTERM with SIGKILL when the command ignores it', async () => {
    const started = Date.now();
    const result = await transport.run({ argv: ['sh', '-c', 'trap "" TERM; sleep 30'], timeoutMs: 200 });
    expect(result).toMatchObject({ exitCode: null, timedOut: true });
    expect(Date.now() - started).toBeLessThan(8_000);
  });

  it('still SIGKILLs a child that ignores SIGTERM after the command itself has gone', async () => {
    const result = await transport.run({
      argv: ['sh', '-c', '(trap "" TERM; exec sleep 30) </dev/null >/dev/null 2>&1 & echo $!; wait'],
      timeoutMs: 200,
    });
    expect(result.timedOut).toBe(true);
    const stubborn = Number(result.stdout.trim());
    expect(alive(stubborn)).toBe(true);
    await until(() => !alive(stubborn));
  });

  it('stops the command when its signal is aborted, and never starts one whose signal already was', async () => {
    const controller = new AbortController();
    const started = Date.now();
    const result = await transport.run({
      argv: ['sh', '-c', 'echo ready; sleep 30'],
      signal: controller.signal,
      onOutput: (_stream, chunk) => {
        if (chunk.includes('ready')) controller.abort();
      },
    });
    expect(result).toMatchObject({ exitCode: null, timedOut: false, stdout: 'ready\n' });
    expect(Date.now() - started).toBeLessThan(5_000);

    const marker = join(dir, 'should-not-exist');
    const aborted = await transport.run({ argv: ['touch', marker], signal: AbortSignal.abort() });
    expect(aborted.exitCode).toBeNull();
    expect(existsSync(marker)).toBe(false);
  });

  it('keeps only the end of long output in its result, but streams all of it', async () => {
    const small = localTransport({ outputLimit: 1_000 });
    let streamed = 0;
    const result = await small.run({
      argv: [
        process.execPath,
        '-e',
        'for (let i = 0; i < 5000; i++) process.stdout.write(String(i % 10)); process.stdout.write("END")',
      ],
      onOutput: (_stream, chunk) => (streamed += chunk.length),
    });
    expect(streamed).toBe(5_003);
    expect(result.stdout).toMatch(/^\[… earlier output dropped …\]\n/);
    expect(result.stdout.endsWith('END')).toBe(true);
    expect(result.stdout.length).toBeLessThan(1_100);
  });

  it('never splits a UTF-8 character across chunks', async () => {
    const text = 'héllo wörld ✓ ';
    const result = await transport.run({
      argv: [process.execPath, '-e', `process.stdout.write(${JSON.stringify(text)}.repeat(20000))`],
    });
    expect(result.stdout).toBe(text.repeat(20_000));
  });
});
