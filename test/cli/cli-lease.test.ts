import { createServer } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { serve, type App } from '../../src/app.js';
import { loadConfig } from '../../src/config.js';
import { createLogger } from '../../src/logger.js';
import { createTestDatabase, type TestDatabase } from '../support/database.js';
import { runCli, startCli } from './run-cli.js';

// The real `drydock` binary against a real server (the app, in this process, on PGlite).

const quiet = createLogger('error', () => {});

/** A port nothing listens on: taken from the OS, then given back. */
async function closedPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  await new Promise((resolve) => server.close(resolve));
  return port;
}

interface JsonLease {
  databaseId: number;
  status: string;
  resource: { databaseId: number; name: string; attributes: Record<string, unknown> } | null;
}

describe('drydock lease', () => {
  let db: TestDatabase;
  let app: App;
  let env: Record<string, string>;

  /** Polls `drydock leases --all --json` until the lease has the status. */
  async function untilStatus(id: number, status: string): Promise<void> {
    // A deadline, not a count of tries: each try starts a CLI process, which is slow on a busy machine.
    for (const deadline = Date.now() + 60_000; Date.now() < deadline;) {
      const { stdout } = await runCli(['leases', '--all', '--json'], { env });
      if ((JSON.parse(stdout) as JsonLease[]).some((l) => l.databaseId === id && l.status === status)) return;
      await new Promise((resolve) => setTimeout(resolve, 200));
    }
    throw new Error(`lease ${id} never became ${status}`);
  }

  beforeAll(async () => {
    db = await createTestDatabase('pglite');
    app = await serve(db, { ...loadConfig({}), port: 0, shutdownTimeoutMs: 2_000 }, quiet);
    env = { DRYDOCK_URL: app.url };
    const created = await runCli(
      ['blueprint', 'create', '--name', 'build-hosts', '--implementation', 'host-pool', '--config', '-'],
      {
        env,
        stdin: JSON.stringify({
          services: [{ name: 'build', bindings: [{ name: 'h1', address: '10.0.0.1', port: 22 }] }],
        }),
      },
    );
    expect(created.stderr).toBe('');
    expect(created.stdout).toMatch(/created blueprint 1 "build-hosts"/);
  });
  afterAll(async () => {
    await app.close();
    await db.dispose();
  });

  it('follows a lease to ACTIVE, prints where the host is, and releases it to DESTROYED', async () => {
    const leased = await runCli(['lease', '--type', 'host', '--until', '1h'], { env });
    expect(leased.code).toBe(0);
    // Progress on stderr: each log entry as it happened, in order.
    expect(leased.stderr).toMatch(/lease 1\s+lease-requested[\s\S]*lease 1\s+lease-activated/);
    // The result on stdout: the lease and its resource's connection details.
    expect(leased.stdout).toMatch(/lease 1 is ACTIVE on resource 1 "build\/h1"/);
    expect(leased.stdout).toMatch(/address\s+10\.0\.0\.1/);
    expect(leased.stdout).toMatch(/port\s+22/);

    const released = await runCli(['release-lease', '--id', '1'], { env });
    expect(released).toMatchObject({ code: 0, stdout: expect.stringMatching(/lease 1 .*release requested/) });
    await untilStatus(1, 'DESTROYED');
  });

  it('prints JSON that parses with --json, and nothing else on stdout', async () => {
    const leased = await runCli(['lease', '--type', 'host', '--count', '2', '--json'], { env });
    expect(leased.code).toBe(0);
    const output = JSON.parse(leased.stdout) as { leases: JsonLease[] };
    expect(output.leases).toHaveLength(2);
    for (const lease of output.leases) {
      expect(lease.status).toBe('ACTIVE');
      expect(lease.resource?.attributes).toMatchObject({ address: '10.0.0.1', port: 22, binding: 'build/h1' });
    }
    const ids = output.leases.map((lease) => String(lease.databaseId));
    // An id given twice (here also as its global id) is released once, not refused the second time.
    const again = Buffer.from(`Lease:${ids[0]}`).toString('base64');
    const released = await runCli(['release-lease', '--json', '--id', ...ids, ids[0]!, again], { env });
    expect(released).toMatchObject({ code: 0, stderr: '' });
    expect((JSON.parse(released.stdout) as JsonLease[]).map((l) => String(l.databaseId))).toEqual(ids);
  });

  it('releases what it requested when interrupted with Ctrl-C before ACTIVE', async () => {
    // A pool of one resource at a time: the linux lease holds it, so a mac lease has to wait.
    const config = {
      services: [
        {
          name: 'p',
          bindings: [
            { name: 'lin', address: '10.0.1.1', port: 22, attributes: { platform: 'linux' } },
            { name: 'mac', address: '10.0.1.2', port: 22, attributes: { platform: 'mac' } },
          ],
        },
      ],
    };
    const created = await runCli(
      [
        'blueprint',
        'create',
        '--json',
        '--name',
        'one-at-a-time',
        '--implementation',
        'host-pool',
        '--limit',
        '1',
        '--config',
        '-',
      ],
      { env, stdin: JSON.stringify(config) },
    );
    const blueprint = String((JSON.parse(created.stdout) as { databaseId: number }).databaseId);
    const holder = await runCli(['lease', '--type', 'host', '--blueprint', blueprint, '--attributes', '-', '--json'], {
      env,
      stdin: '{"platform":"linux"}',
    });
    expect(holder.code).toBe(0);

    const waiting = startCli(['lease', '--type', 'host', '--blueprint', blueprint, '--attributes', '-'], {
      env,
      stdin: '{"platform":"mac"}',
    });
    // Plain (non-terminal) output says why the lease waits.
    await waiting.waitFor(/lease \d+ waiting: /);
    const id = Number(/requested lease (\d+)/.exec(waiting.stderr())![1]);
    waiting.child.kill('SIGINT');
    expect(await waiting.exited).toBe(130);
    expect(waiting.stderr()).toContain(`released lease ${id}`);
    expect(waiting.stdout()).toBe('');
    await untilStatus(id, 'DESTROYED');
  });

  it('fails with the reason when the lease cannot be served', async () => {
    const failed = await runCli(['lease', '--type', 'teapot'], { env });
    expect(failed.code).toBe(1);
    expect(failed.stderr).toMatch(/lease-broken/);
    expect(failed.stderr).toMatch(/drydock: lease \d+ is (BROKEN|DESTROYED): .*teapot/);
  });

  it('explains bad input, a bad token and an unreachable server, each with its own exit code', async () => {
    const nowhere = `http://127.0.0.1:${await closedPort()}`;
    const [noType, badFile, badJson, notObject, badUntil, badFlag, badId, unreachable, badToken] = await Promise.all([
      runCli(['lease'], { env }),
      runCli(['lease', '--type', 'host', '--attributes', '/no/such/file.json'], { env }),
      runCli(['lease', '--type', 'host', '--attributes', '-'], { env, stdin: '{"platform": linux}' }),
      runCli(['lease', '--type', 'host', '--attributes', '-'], { env, stdin: '["linux"]' }),
      runCli(['lease', '--type', 'host', '--until', 'tomorrow-ish'], { env }),
      runCli(['lease', '--type', 'host', '--colour', 'blue'], { env }),
      runCli(['release-lease', '--id', 'forty-two'], { env }),
      runCli(['leases'], { env: { DRYDOCK_URL: nowhere } }),
      runCli(['leases', '--token', 'not-a-real-token'], { env }),
    ]);
    expect(noType).toMatchObject({ code: 2, stderr: expect.stringMatching(/--type is required/) });
    expect(badFile).toMatchObject({
      code: 2,
      stderr: expect.stringMatching(/--attributes: cannot read \/no\/such\/file\.json/),
    });
    expect(badJson).toMatchObject({ code: 2, stderr: expect.stringMatching(/--attributes: stdin is not valid JSON/) });
    expect(notObject).toMatchObject({ code: 2, stderr: expect.stringMatching(/expected a JSON object/) });
    expect(badUntil).toMatchObject({ code: 2, stderr: expect.stringMatching(/--until must be a duration/) });
    expect(badFlag).toMatchObject({ code: 2, stderr: expect.stringMatching(/unknown flag --colour/) });
    expect(badId).toMatchObject({ code: 2, stderr: expect.stringMatching(/"forty-two" is not a lease id/) });
    expect(unreachable).toMatchObject({
      code: 3,
      stderr: expect.stringContaining(`cannot reach the Drydock server at ${nowhere} (ECONNREFUSED)`),
    });
    expect(badToken).toMatchObject({ code: 4, stderr: expect.stringMatching(/Not authenticated.*check --token/) });
    // What only the server checks is named by the flag it came from, not by the API's field; a
    // number out of range is refused before the request (flag-ranges.test.ts has them all).
    const [tooMany, noBlueprint, tooLong] = await Promise.all([
      runCli(['lease', '--type', 'host', '--count', '500'], { env }),
      runCli(['lease', '--type', 'host', '--blueprint', '99'], { env }),
      runCli(['lease', '--type', 'host', '--wait-timeout', '99999999'], { env }),
    ]);
    expect(tooMany).toMatchObject({
      code: 2,
      stderr:
        'drydock: --count must be a whole number from 1 to 100, not "500"\n(run drydock lease --help for usage)\n',
    });
    expect(noBlueprint).toMatchObject({ code: 2, stderr: 'drydock: --blueprint: blueprint 99 does not exist\n' });
    expect(tooLong).toMatchObject({
      code: 2,
      stderr:
        'drydock: --wait-timeout must be a whole number from 1 to 2592000, not "99999999"\n(run drydock lease --help for usage)\n',
    });
    // Nothing was requested by any of them.
    const { stdout } = await runCli(['leases', '--all', '--json'], { env });
    expect((JSON.parse(stdout) as JsonLease[]).every((l) => l.status !== 'PENDING')).toBe(true);
  });
});
