import { spawn } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { createServer, type Server, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { projectRoot } from '../src/db/migrations-folder.js';
import { describePostgres, testPostgresUrl } from './support/database.js';
import { entryArgs } from './support/entry-args.js';

const testRedisUrl = process.env['TEST_REDIS_URL'];

// A setting the server cannot start with is named, in one line, with what to do: not the
// system's own error and its stack.
describe('a server that cannot start because of a setting', () => {
  let dir: string;
  let taken: Server;
  let takenPort: number;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'drydock-start-failures-'));
    taken = createServer();
    await new Promise<void>((resolve) => taken.listen(0, '127.0.0.1', resolve));
    takenPort = (taken.address() as { port: number }).port;
  });
  afterAll(async () => {
    await new Promise((resolve) => taken.close(resolve));
    await rm(dir, { recursive: true, force: true });
  });

  /** The server started with `env`: its output so far, and its exit code once it has exited. */
  const launch = (env: Record<string, string>) => {
    const child = spawn(process.execPath, entryArgs('src', 'main.ts'), {
      cwd: projectRoot,
      env: { PATH: process.env['PATH'] ?? '', DATA_DIR: join(dir, 'pglite'), ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const server = { child, output: '', exited: new Promise<number | null>((resolve) => child.once('close', resolve)) };
    child.stdout.on('data', (chunk: Buffer) => (server.output += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (server.output += chunk.toString()));
    return server;
  };
  const start = async (env: Record<string, string>) => {
    const server = launch(env);
    const code = await server.exited;
    return { code, output: server.output };
  };
  /** A TCP server on 127.0.0.1 that answers as `answer` does, for the length of `use`. */
  const withFakeServer = async (answer: (socket: Socket) => void, use: (port: number) => Promise<void>) => {
    const fake = createServer(answer);
    await new Promise<void>((resolve) => fake.listen(0, '127.0.0.1', resolve));
    try {
      await use((fake.address() as { port: number }).port);
    } finally {
      await new Promise((resolve) => fake.close(resolve));
    }
  };
  // Every line the server writes to stderr is one JSON entry, whoever wrote it (Node's process
  // warnings and libraries' console lines included); stdout carries only the "listening" line.
  const entries = (output: string) =>
    output
      .split('\n')
      .filter((line) => line !== '' && !line.startsWith('drydock listening on '))
      .map((line) => JSON.parse(line) as { level: string; msg: string; warning?: string });
  const failure = (output: string) =>
    output
      .split('\n')
      .filter((line) => line.includes('could not start'))
      .map((line) => (JSON.parse(line) as { msg: string }).msg);

  it('a port in use', async () => {
    const { code, output } = await start({ HOST: '127.0.0.1', PORT: String(takenPort) });
    expect(code).toBe(1);
    expect(failure(output)).toEqual([
      `could not start: PORT ${takenPort} is in use on HOST 127.0.0.1 (EADDRINUSE): stop what listens there or choose another PORT`,
    ]);
  }, 60_000);

  it('a host that is not this machine', async () => {
    for (const [host, code] of [
      ['10.99.99.99', 'EADDRNOTAVAIL'],
      ['not-a-host.invalid', 'ENOTFOUND'],
    ]) {
      const started = await start({ HOST: host!, PORT: '0' });
      expect(started.code).toBe(1);
      expect(failure(started.output)).toEqual([
        `could not start: HOST ${host} is not an address of this machine (${code}): use one of its addresses, 127.0.0.1 or 0.0.0.0`,
      ]);
    }
  }, 60_000);

  it('a database that cannot be reached, without its password', async () => {
    const { code, output } = await start({ PORT: '0', DATABASE_URL: 'postgresql://postgres:secret@127.0.0.1:1/x' });
    expect(code).toBe(1);
    expect(failure(output)).toEqual([
      'could not start: DATABASE_URL postgresql://postgres:***@127.0.0.1:1/x cannot be reached (ECONNREFUSED): check its host and port, and that PostgreSQL runs',
    ]);
    expect(output).not.toContain('secret');
  }, 60_000);

  it('a Unix socket directory with no socket in it', async () => {
    const { code, output } = await start({ PORT: '0', DATABASE_URL: `postgresql://postgres@/x?host=${dir}` });
    expect(code).toBe(1);
    expect(failure(output)).toEqual([
      `could not start: DATABASE_URL postgresql://postgres@/x?host=${dir} cannot be reached (ENOENT: no socket at ${dir}/.s.PGSQL.5432): check the directory in its ?host= and that PostgreSQL runs`,
    ]);
  }, 60_000);

  it('SSL asked for where the server offers none', async () => {
    // A server that answers PostgreSQL's SSL request as one without SSL does: "N".
    await withFakeServer(
      (socket) => socket.once('data', () => socket.end('N')),
      async (port) => {
        const url = `postgresql://postgres@127.0.0.1:${port}/drydock?sslmode=require`;
        const { code, output } = await start({ PORT: '0', DATABASE_URL: url });
        expect(code).toBe(1);
        expect(failure(output)).toEqual([
          `could not start: DATABASE_URL ${url} asks for SSL, which this PostgreSQL server does not offer: enable ssl on the server, or take sslmode out of the URL where the network is trusted`,
        ]);
        // pg warns about what sslmode=require will mean in its next major version: one entry.
        const warnings = entries(output).filter((entry) => entry.level === 'warn');
        expect(warnings).toHaveLength(1);
        expect(warnings[0]).toMatchObject({
          warning: 'Warning',
          msg: expect.stringContaining("SSL modes 'prefer', 'require'"),
        });
      },
    );
  }, 60_000);

  it('a wrong password, without the password', async () => {
    // This machine's PostgreSQL trusts local connections, so a small server stands in for one that
    // asks for a password: it asks (cleartext), reads the answer and refuses it as PostgreSQL does.
    await withFakeServer(
      (socket) => {
        socket.once('data', () => {
          socket.write(Buffer.from([0x52, 0, 0, 0, 8, 0, 0, 0, 3])); // AuthenticationCleartextPassword
          socket.once('data', () => {
            const fields = Buffer.from(
              'SFATAL\0VFATAL\0C28P01\0Mpassword authentication failed for user "postgres"\0\0',
              'utf8',
            );
            const length = Buffer.alloc(4);
            length.writeInt32BE(fields.length + 4);
            socket.end(Buffer.concat([Buffer.from('E'), length, fields]));
          });
        });
      },
      async (port) => {
        const { code, output } = await start({
          PORT: '0',
          DATABASE_URL: `postgresql://postgres:wrongsecret@127.0.0.1:${port}/drydock`,
        });
        expect(code).toBe(1);
        expect(failure(output)).toEqual([
          `could not start: DATABASE_URL postgresql://postgres:***@127.0.0.1:${port}/drydock was refused by PostgreSQL: password authentication failed for user "postgres" (28P01): check the user and password in DATABASE_URL`,
        ]);
        expect(output).not.toContain('wrongsecret');
      },
    );
  }, 60_000);

  it('a Redis that cannot be reached, without its password', async () => {
    const { code, output } = await start({ PORT: '0', REDIS_URL: 'redis://ci:redissecret@127.0.0.1:1' });
    expect(code).toBe(1);
    expect(failure(output)).toEqual([
      'could not start: REDIS_URL redis://ci:***@127.0.0.1:1 cannot be reached (connect ECONNREFUSED 127.0.0.1:1): check its host and port, and that Redis runs',
    ]);
    expect(output).not.toContain('redissecret');
  }, 60_000);

  describe.skipIf(!testRedisUrl)(`the test Redis${testRedisUrl ? '' : ' [skipped: TEST_REDIS_URL not set]'}`, () => {
    it('refuses a user it does not know', async () => {
      const url = new URL(testRedisUrl!);
      url.username = 'no_such_user_drydock';
      url.password = 'redissecret';
      const { code, output } = await start({ PORT: '0', REDIS_URL: url.toString() });
      expect(code).toBe(1);
      url.password = '***';
      expect(failure(output)).toEqual([
        `could not start: REDIS_URL ${url.toString()} was refused by Redis: WRONGPASS invalid username-password pair or user is disabled: check the user and password in REDIS_URL`,
      ]);
      expect(output).not.toContain('redissecret');
    }, 60_000);

    it("takes a password it does not need: the library's warning is a log entry, the password nowhere", async () => {
      const url = new URL(testRedisUrl!);
      url.password = 'redissecret';
      const server = launch({ DATA_DIR: join(dir, 'pglite-redis'), PORT: '0', REDIS_URL: url.toString() });
      await new Promise<void>((resolve, reject) => {
        const read = () => {
          if (server.output.includes('drydock listening on ')) resolve();
        };
        server.child.stdout.on('data', read);
        server.child.stderr.on('data', read);
        void server.exited.then(() => reject(new Error(`the server exited before listening:\n${server.output}`)));
      });
      server.child.kill('SIGTERM');
      expect(await server.exited).toBe(0);
      const output = server.output;
      const warnings = entries(output).filter((entry) => entry.level === 'warn');
      expect(warnings.length).toBeGreaterThan(0);
      for (const warning of warnings)
        expect(warning.msg).toMatch(/does not require a password, but a password was supplied/);
      expect(output).not.toContain('redissecret');
    }, 60_000);
  });

  // PostgreSQL answers, and refuses: the test database's server, with a user or a database it lacks.
  describePostgres('refused by PostgreSQL', () => {
    const on = (user: string, database: string) => {
      const url = new URL(testPostgresUrl!);
      url.username = user;
      url.pathname = `/${database}`;
      return url.toString();
    };

    it('a user it does not know', async () => {
      const url = on('no_such_user_drydock', 'postgres');
      const { code, output } = await start({ PORT: '0', DATABASE_URL: url });
      expect(code).toBe(1);
      expect(failure(output)).toEqual([
        `could not start: DATABASE_URL ${url} was refused by PostgreSQL: role "no_such_user_drydock" does not exist (28000): check the user in DATABASE_URL, and that pg_hba.conf lets it connect from here`,
      ]);
    }, 60_000);

    it('a database that does not exist', async () => {
      const url = on(new URL(testPostgresUrl!).username, 'no_such_database_drydock');
      const { code, output } = await start({ PORT: '0', DATABASE_URL: url });
      expect(code).toBe(1);
      expect(failure(output)).toEqual([
        `could not start: DATABASE_URL ${url} was refused by PostgreSQL: database "no_such_database_drydock" does not exist (3D000): create the database (createdb) or correct the name in DATABASE_URL`,
      ]);
    }, 60_000);
  });
});
