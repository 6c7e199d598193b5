import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { DataDirInUseError, LOCK_FILE, lockDataDir } from '../../src/db/data-dir-lock.js';
import { projectRoot } from '../../src/db/migrations-folder.js';
import { graphqlRequest } from '../support/http.js';
import { startServerProcess, type ServerProcess } from '../support/process.js';
import { entryArgs } from '../support/entry-args.js';

const temporaryDirs: string[] = [];
afterAll(() => Promise.all(temporaryDirs.map((dir) => rm(dir, { recursive: true, force: true }))));
async function temporaryDir(): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'drydock-lock-'));
  temporaryDirs.push(dir);
  return dir;
}

/** The pid of a process that has exited: nothing runs under it (until the kernel reuses it). */
function deadPid(): number {
  const { pid } = spawnSync(process.execPath, ['-e', '']);
  return pid!;
}

/** A lock file as a process that died (kill -9) left it. */
const staleLock = (nonce: string, pid = deadPid()) =>
  JSON.stringify({ pid, start: '1', host: hostname(), since: new Date().toISOString(), nonce }) + '\n';

/**
 * Runs an entry point of this repository until it exits. A server that starts listening instead is
 * killed at once, so that a missing lock fails the test quickly and leaves nothing running.
 */
function runToExit(entry: string[], env: Record<string, string>): Promise<{ code: number | string; output: string }> {
  const child = spawn(process.execPath, entryArgs(...entry), {
    cwd: projectRoot,
    env: { PATH: process.env['PATH'] ?? '', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  const collect = (chunk: Buffer) => {
    output += chunk.toString();
    if (output.includes('drydock listening')) child.kill('SIGKILL');
  };
  child.stdout.on('data', collect);
  child.stderr.on('data', collect);
  return new Promise((resolve) =>
    child.once('exit', (code, signal) =>
      resolve({ code: output.includes('drydock listening') ? 'listening' : (code ?? signal!), output }),
    ),
  );
}

const inUse = (dir: string, pid: number) =>
  `another Drydock process (pid ${pid}) has ${dir} open; PGlite serves one process: stop it, ` +
  'choose another DATA_DIR, or use PostgreSQL (DATABASE_URL) for several processes';

describe('two server processes on one PGlite data directory', () => {
  let first: ServerProcess | undefined;
  let third: ServerProcess | undefined;
  afterAll(async () => {
    await first?.stop('SIGKILL');
    await third?.stop('SIGKILL');
  });

  it('refuses the second while the first serves, and takes over the lock of one killed with -9', async () => {
    const dataDir = await temporaryDir();
    first = await startServerProcess({ DATA_DIR: dataDir });
    const firstUrl = `${first.url}/graphql`;
    const created = await graphqlRequest(
      firstUrl,
      `mutation { createBlueprint(input: { name: "written by the first", implementation: "host-pool",
        config: { services: [{ name: "s", bindings: [{ name: "h1", address: "10.0.0.1", port: 22 }] }] } }) { __typename } }`,
    );
    expect(created.body.errors).toBeUndefined();

    // The second server fails at start, before it opens the database, and says what to do.
    const second = await runToExit(['src', 'main.ts'], { DATA_DIR: dataDir, PORT: '0' });
    expect(second.code).toBe(1);
    expect(second.output).toContain(inUse(dataDir, first.child.pid!));
    expect(second.output).not.toContain('embedded PGlite at');

    // So does `npm run migrate`, which opens the same directory.
    const migrate = await runToExit(['scripts', 'migrate.ts'], { DATA_DIR: dataDir });
    expect(migrate.code).toBe(1);
    expect(migrate.output).toContain(inUse(dataDir, first.child.pid!));

    // The first one never noticed.
    const blueprintsQuery = '{ blueprints { edges { node { name } } } }';
    const seen = await graphqlRequest<{ blueprints: { edges: { node: { name: string } }[] } }>(
      firstUrl,
      blueprintsQuery,
    );
    expect(seen.body.data?.blueprints.edges.map((edge) => edge.node.name)).toContain('written by the first');

    // Killed with -9 it leaves its lock behind; a new start takes it over and finds the data.
    expect(await first.stop('SIGKILL')).toBe('SIGKILL');
    expect(JSON.parse(await readFile(join(dataDir, LOCK_FILE), 'utf8'))).toMatchObject({ pid: first.child.pid });
    third = await startServerProcess({ DATA_DIR: dataDir });
    const afterRestart = await graphqlRequest<{ blueprints: { edges: { node: { name: string } }[] } }>(
      `${third.url}/graphql`,
      blueprintsQuery,
    );
    expect(afterRestart.body.data?.blueprints.edges.map((edge) => edge.node.name)).toContain('written by the first');
    expect(JSON.parse(await readFile(join(dataDir, LOCK_FILE), 'utf8'))).toMatchObject({ pid: third.child.pid });

    // Stopped cleanly it removes its lock, and the lock's files only.
    expect(await third.stop('SIGTERM')).toBe(0);
    expect((await readdir(dataDir)).filter((name) => name.startsWith(LOCK_FILE))).toEqual([]);
    // Three starts of the WASM database on a busy machine.
  }, 240_000);
});

describe('lockDataDir', () => {
  it('is exclusive, also within one process, and free again once released', async () => {
    const dir = await temporaryDir();
    const lock = await lockDataDir(dir);
    await expect(lockDataDir(dir)).rejects.toThrow(`this process (pid ${process.pid}) already has ${dir} open`);
    await lock.release();
    expect(await readdir(dir)).toEqual([]);
    const again = await lockDataDir(dir);
    await again.release();
  });

  it('takes over a lock whose pid now runs another process (started at another time)', async () => {
    const dir = await temporaryDir();
    await writeFile(join(dir, LOCK_FILE), staleLock('reused', process.ppid));
    const lock = await lockDataDir(dir);
    expect(JSON.parse(await readFile(lock.path, 'utf8'))).toMatchObject({ pid: process.pid });
    await lock.release();
  });

  it('takes over a lock whose file is unreadable (cut short by a power loss)', async () => {
    const dir = await temporaryDir();
    await writeFile(join(dir, LOCK_FILE), '');
    const lock = await lockDataDir(dir);
    await lock.release();
    expect(await readdir(dir)).toEqual([]);
  });

  it('takes over a stale lock whose takeover a process that died left half done', async () => {
    const dir = await temporaryDir();
    const stale = staleLock('left by a crash');
    await writeFile(join(dir, LOCK_FILE), stale);
    const version = createHash('sha256').update(stale).digest('hex').slice(0, 16);
    await writeFile(join(dir, `${LOCK_FILE}.takeover-${version}`), staleLock('died taking over'));
    const lock = await lockDataDir(dir);
    expect(await readdir(dir)).toEqual([LOCK_FILE]);
    await lock.release();
  });

  it('never judges a lock written on another host stale: its pid means nothing here', async () => {
    const dir = await temporaryDir();
    const pid = deadPid();
    await writeFile(join(dir, LOCK_FILE), JSON.stringify({ pid, start: '1', host: 'elsewhere', nonce: 'x' }));
    const refused = lockDataDir(dir);
    await expect(refused).rejects.toThrow(`another Drydock process (pid ${pid} on host elsewhere) has ${dir} open`);
    await expect(refused).rejects.toThrow(`delete ${join(dir, LOCK_FILE)}`);
  });

  it('lets exactly one of many concurrent takeovers of one stale lock win, every time', async () => {
    const dir = await temporaryDir();
    const pid = deadPid();
    for (let round = 0; round < 300; round++) {
      await writeFile(join(dir, LOCK_FILE), staleLock(`round ${round}`, pid));
      // Started a little apart at random, so that each round interleaves their steps differently.
      const results = await Promise.allSettled(
        Array.from({ length: 6 }, async () => {
          await new Promise((resolve) => setTimeout(resolve, Math.random() * 4));
          return lockDataDir(dir);
        }),
      );
      const won = results.flatMap((result) => (result.status === 'fulfilled' ? [result.value] : []));
      expect(won).toHaveLength(1);
      for (const result of results) {
        if (result.status === 'rejected') expect(result.reason).toBeInstanceOf(DataDirInUseError);
      }
      expect(JSON.parse(await readFile(join(dir, LOCK_FILE), 'utf8'))).toMatchObject({ pid: process.pid });
      await won[0]!.release();
      expect(await readdir(dir)).toEqual([]);
    }
  }, 60_000);

  it('lets exactly one of several processes taking over one stale lock at once win, every time', async () => {
    const dir = await temporaryDir();
    const moduleUrl = new URL('../../src/db/data-dir-lock.ts', import.meta.url).href;
    // Each contender waits for a round's directory, tries to lock it, says how it went, and
    // releases when told: the processes are started once, and every round only races the lock.
    const contender = `
      const { lockDataDir } = await import(${JSON.stringify(moduleUrl)});
      let held;
      process.on('message', async (message) => {
        if (message === 'release') {
          await held?.release();
          held = undefined;
          process.send('released');
          return;
        }
        try {
          held = await lockDataDir(message);
          process.send('won');
        } catch (error) {
          process.send(error.name === 'DataDirInUseError' ? 'refused' : 'failed: ' + error.stack);
        }
      });
      process.send('ready');`;
    const contenders: ChildProcess[] = Array.from({ length: 3 }, () =>
      spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', contender], {
        cwd: projectRoot,
        stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
      }),
    );
    // Each contender's replies, in order; one that exits fails whatever waits on it.
    const waiting = new Map<ChildProcess, { resolve(message: string): void; reject(error: Error): void }[]>();
    for (const child of contenders) {
      waiting.set(child, []);
      child.on('message', (message) => waiting.get(child)!.shift()?.resolve(String(message)));
      child.once('exit', (code) => {
        for (const waiter of waiting.get(child)!.splice(0)) waiter.reject(new Error(`contender exited with ${code}`));
      });
    }
    const reply = (child: ChildProcess) =>
      new Promise<string>((resolve, reject) => waiting.get(child)!.push({ resolve, reject }));
    try {
      await Promise.all(contenders.map(reply));
      const pid = deadPid();
      for (let round = 0; round < 100; round++) {
        await writeFile(join(dir, LOCK_FILE), staleLock(`round ${round}`, pid));
        const outcomes = await Promise.all(
          contenders.map((child) => {
            const outcome = reply(child);
            child.send(dir);
            return outcome;
          }),
        );
        expect(outcomes.filter((outcome) => outcome !== 'refused')).toEqual(['won']);
        const winner = contenders[outcomes.indexOf('won')]!;
        expect(JSON.parse(await readFile(join(dir, LOCK_FILE), 'utf8'))).toMatchObject({ pid: winner.pid });
        const released = reply(winner);
        winner.send('release');
        expect(await released).toBe('released');
        expect(existsSync(join(dir, LOCK_FILE))).toBe(false);
      }
    } finally {
      for (const child of contenders) child.kill('SIGKILL');
    }
  }, 120_000);
});
