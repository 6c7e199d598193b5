import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { serve, type App } from '../../src/app.js';
import { loadConfig } from '../../src/config.js';
import { createLogger } from '../../src/logger.js';
import { createTestDatabase, type TestDatabase } from '../support/database.js';
import { waitFor } from '../support/wait.js';
import { runCli, startCli } from './run-cli.js';

// The management commands of the real `drydock` binary against a real server.

const quiet = createLogger('error', () => {});
const pool = { services: [{ name: 'ci', bindings: [{ name: 'h1', address: '10.0.2.1', port: 2222 }] }] };

describe('drydock management commands', () => {
  let db: TestDatabase;
  let app: App;
  let env: Record<string, string>;

  beforeAll(async () => {
    db = await createTestDatabase('pglite');
    app = await serve(db, { ...loadConfig({}), port: 0, shutdownTimeoutMs: 2_000 }, quiet);
    env = { DRYDOCK_URL: app.url };
  });
  afterAll(async () => {
    await app.close();
    await db.dispose();
  });

  it('creates, lists, shows, disables and enables blueprints, and rejects a bad config with its path', async () => {
    const created = await runCli(
      ['blueprint', 'create', '--name', 'ci-hosts', '--implementation', 'host-pool', '--config', '-'],
      { env, stdin: JSON.stringify(pool) },
    );
    expect(created).toMatchObject({ code: 0, stdout: expect.stringMatching(/created blueprint 1 "ci-hosts"/) });

    const invalid = await runCli(
      ['blueprint', 'create', '--name', 'bad', '--implementation', 'host-pool', '--config', '-'],
      {
        env,
        stdin: JSON.stringify({ services: [{ name: 's', bindings: [{ name: 'h', address: 'x', port: 70000 }] }] }),
      },
    );
    expect(invalid.code).toBe(2);
    expect(invalid.stderr).toMatch(/invalid config\.services\.0\.bindings\.0\.port/);

    const disabled = await runCli(['blueprint', 'disable', '--id', '1'], { env });
    expect(disabled.stdout).toMatch(/blueprint 1 "ci-hosts" .* disabled/);
    const listed = await runCli(['blueprint', 'list', '--disabled', '--json'], { env });
    expect((JSON.parse(listed.stdout) as { name: string }[]).map((b) => b.name)).toEqual(['ci-hosts']);
    const enabled = await runCli(['blueprint', 'enable', '1'], { env });
    expect(enabled.stdout).toMatch(/enabled/);

    const shown = await runCli(['blueprint', 'show', '1'], { env });
    expect(shown.code).toBe(0);
    expect(shown.stdout).toContain('"address": "10.0.2.1"');
    const table = await runCli(['blueprint', 'list'], { env });
    expect(table.stdout).toMatch(/^ID\s+NAME\s+IMPLEMENTATION[\s\S]*1\s+ci-hosts\s+host-pool\s+host\s+enabled/);
  });

  it('creates a token that works, lists it and revokes it', async () => {
    const created = await runCli(['token', 'create', '--name', 'runner', '--principal', 'ci-bot', '--json'], { env });
    expect(created.code).toBe(0);
    const { token, apiToken } = JSON.parse(created.stdout) as { token: string; apiToken: { databaseId: number } };
    const asBot = { ...env, DRYDOCK_TOKEN: token };

    const mine = await runCli(['token', 'list'], { env: asBot });
    expect(mine.stderr).toContain('signed in as ci-bot');
    expect(mine.stdout).toMatch(/runner/);

    // A read-only token, made with the bot's own: it sees, and may not lease.
    const reader = await runCli(['token', 'create', '--name', 'reader', '--scope', 'read', '--json'], { env: asBot });
    expect(reader.code).toBe(0);
    const asReader = { ...env, DRYDOCK_TOKEN: (JSON.parse(reader.stdout) as { token: string }).token };
    expect((await runCli(['token', 'list'], { env: asReader })).stderr).toContain('token scopes read');
    const leased = await runCli(['lease', '--type', 'host'], { env: asReader });
    expect(leased.code).not.toBe(0);
    expect(leased.stderr).toMatch(/LEASE scope/);

    const revoked = await runCli(['token', 'revoke', '--id', String(apiToken.databaseId)], { env });
    expect(revoked.stdout).toMatch(/revoked/);
    const refused = await runCli(['leases'], { env: asBot });
    expect(refused.code).toBe(4);
  });

  it('requests, lists and decides authorizations', async () => {
    const created = await runCli(['token', 'create', '--name', 'dev', '--principal', 'dev-1', '--json'], { env });
    const { token } = JSON.parse(created.stdout) as { token: string };
    const requested = await runCli(['authorization', 'request', '--blueprint', '1', '--json'], {
      env: { ...env, DRYDOCK_TOKEN: token },
    });
    expect(requested.code).toBe(0);
    const { databaseId } = JSON.parse(requested.stdout) as { databaseId: number };

    const pending = await runCli(['authorization', 'list', '--state', 'requested'], { env });
    expect(pending.stdout).toMatch(new RegExp(`${databaseId}\\s+REQUESTED\\s+1 \\(ci-hosts\\)\\s+dev-1`));
    const authorized = await runCli(['authorization', 'authorize', '--id', String(databaseId)], { env });
    expect(authorized.stdout).toMatch(/dev-1 on blueprint 1 \(ci-hosts\) is AUTHORIZED/);
  });

  it('lists leases and resources, updates and releases resources, and watches leases live', async () => {
    const watch = startCli(['watch', '--json'], { env });
    await watch.waitFor(/watching \d+ live lease/);
    const plain = startCli(['watch'], { env });
    await plain.waitFor(/watching \d+ live lease/);

    const leased = await runCli(['lease', '--type', 'host', '--json'], { env });
    expect(leased.code).toBe(0);
    const lease = (JSON.parse(leased.stdout) as { leases: { databaseId: number; resource: { databaseId: number } }[] })
      .leases[0]!;
    await watch.waitFor(new RegExp(`"databaseId":${lease.databaseId},"status":"ACTIVE"`));

    const leases = await runCli(['leases', '--status', 'active'], { env });
    expect(leases.stdout).toMatch(
      new RegExp(`${lease.databaseId}\\s+ACTIVE\\s+host\\s+${lease.resource.databaseId} \\(ci/h1\\)`),
    );
    const resources = await runCli(['resources', '--json'], { env });
    expect((JSON.parse(resources.stdout) as { status: string }[]).map((r) => r.status)).toEqual(['ACTIVE']);

    const updated = await runCli(['update-lease', String(lease.databaseId)], { env });
    expect(updated).toMatchObject({ code: 0, stdout: expect.stringMatching(/update scheduled/) });
    const updatedResource = await runCli(['update-resource', '--id', String(lease.resource.databaseId)], { env });
    expect(updatedResource).toMatchObject({ code: 0, stdout: expect.stringMatching(/update scheduled/) });
    const resourceId = String(lease.resource.databaseId);
    const drained = await runCli(['drain-resource', '--id', resourceId], { env });
    expect(drained).toMatchObject({ code: 0, stdout: expect.stringMatching(/ACTIVE: draining\n$/) });
    const undrained = await runCli(['undrain-resource', resourceId], { env });
    expect(undrained).toMatchObject({ code: 0, stdout: expect.stringMatching(/ACTIVE: in service\n$/) });
    const reclaimed = await runCli(['reclaim', '--type', 'host'], { env });
    expect(reclaimed).toMatchObject({ code: 0, stdout: 'no idle resources to reclaim\n' });

    // Releasing the resource releases the lease on it: the watcher sees it go.
    const released = await runCli(['release-resource', '--all'], { env });
    expect(released.stdout).toMatch(/resource \d+ \(ci\/h1\) .*release requested/);
    await watch.waitFor(new RegExp(`"databaseId":${lease.databaseId},"status":"DESTROYED"`));
    watch.child.kill('SIGINT');
    expect(await watch.exited).toBe(0);
    // Each transition exactly once, none skipped, whatever the events carried.
    await plain.waitFor(new RegExp(`lease ${lease.databaseId}  DESTROYED`));
    plain.child.kill('SIGINT');
    expect(await plain.exited).toBe(0);
    const seen = plain
      .stdout()
      .split('\n')
      .filter((line) => line.includes(`lease ${lease.databaseId} `))
      .map((line) => line.split(/\s+/)[3]);
    expect(seen).toEqual(['PENDING', 'ACQUIRED', 'ACTIVE', 'RELEASED', 'DESTROYED']);

    // The lease's log, then followed: the stream replays it and ends with the DESTROYED lease.
    const log = await runCli(['log', '--lease', String(lease.databaseId)], { env });
    expect(log.code).toBe(0);
    const types = log.stdout
      .trim()
      .split('\n')
      .map((line) => line.split(/\s+/)[3]);
    expect(types[0]).toBe('lease-requested');
    expect(types).toContain('lease-activated');
    expect(types.at(-1)).toBe('lease-destroyed');
    const followed = await runCli(['log', '--lease', String(lease.databaseId), '--follow', '--json'], { env });
    expect(followed.code).toBe(0);
    expect(
      followed.stdout
        .trim()
        .split('\n')
        .map((line) => (JSON.parse(line) as { type: string }).type),
    ).toEqual(types);

    const missing = await runCli(['release-lease', '--id', '999'], { env });
    expect(missing.code).toBe(1);
    // The id as the listings show it, once: not the API's global id.
    expect(missing.stderr).toBe('drydock: lease 999 does not exist\n');
  });

  it("shows a blueprint's principal, and releases only the caller's own leases with release-lease --all", async () => {
    const shown = await runCli(['blueprint', 'show', '1'], { env });
    const principal = await db.prisma.principal.findUniqueOrThrow({ where: { name: 'blueprint:1' } });
    expect(shown.stdout).toMatch(new RegExp(`principal\\s+blueprint:1 \\(principal ${principal.id}\\)`));

    // Someone else's lease, which an administrator sees in listings but --all must leave alone.
    const other = await db.prisma.principal.create({ data: { name: 'someone-else', kind: 'USER' } });
    const theirs = await db.prisma.lease.create({
      data: { resourceType: 'host', ownerId: other.id, authorizingPrincipalId: other.id },
    });
    const leased = await runCli(['lease', '--type', 'host', '--json'], { env });
    const mine = (JSON.parse(leased.stdout) as { leases: { databaseId: number }[] }).leases[0]!.databaseId;
    const released = await runCli(['release-lease', '--all'], { env });
    expect(released.code).toBe(0);
    expect(released.stdout).toContain(`lease ${mine}`);
    expect(released.stdout).not.toContain(`lease ${theirs.id}`);
    // The scheduling pass may still serve or break that lease (its owner is authorized on nothing):
    // what --all must not do is ask for its release.
    expect(await db.prisma.command.count({ where: { targetLeaseId: theirs.id, kind: 'RELEASE' } })).toBe(0);
  });

  it('answers a dry run with drydock candidates, naming what does not match', async () => {
    const served = await runCli(['candidates', '--type', 'host'], { env });
    expect(served.code).toBe(0);
    expect(served.stdout).toMatch(/blueprint 1 \(ci-hosts, host-pool\): usable/);
    expect(served.stdout).toContain('the lease would be served');
    const refused = await runCli(['candidates', '--type', 'host', '--attributes', '-', '--json'], {
      env,
      stdin: JSON.stringify({ platform: 'windows' }),
    });
    expect(refused.code).toBe(1);
    const result = JSON.parse(refused.stdout) as { wouldBeServed: boolean; blueprints: { reason: string }[] };
    expect(result.wouldBeServed).toBe(false);
    expect(result.blueprints[0]!.reason).toBe(
      'attribute "platform": the lease wants "windows", enabled bindings have (none)',
    );
    expect(await db.prisma.lease.count({ where: { attributes: { equals: { platform: 'windows' } } } })).toBe(0);
  });

  it('has --help for every command', async () => {
    const overview = await runCli(['--help']);
    expect(overview.code).toBe(0);
    const names = [...overview.stdout.matchAll(/^ {2}([a-z-]+) {2}/gm)].map((m) => m[1]!);
    expect(names).toEqual(
      expect.arrayContaining(['lease', 'release-lease', 'watch', 'blueprint', 'token', 'authorization']),
    );
    // One of each kind (a command, a group, each group's subcommands) keeps this quick; every
    // command's help comes from the same code path.
    const subcommands = [
      ['lease'],
      ['release-lease'],
      ['watch'],
      ['blueprint', 'create'],
      ['token', 'revoke'],
      ['authorization', 'decline'],
    ];
    const helps = await Promise.all(subcommands.map((args) => runCli([...args, '--help'])));
    helps.forEach((help, i) => {
      expect(help.code, subcommands[i]!.join(' ')).toBe(0);
      expect(help.stdout).toMatch(new RegExp(`^Usage: drydock ${subcommands[i]!.join(' ')}`));
      expect(help.stdout).toContain('--server URL');
    });
    const unknown = await runCli(['lese']);
    // Points at the list of commands, not at a `drydock lese --help` that does not exist.
    expect(unknown).toMatchObject({
      code: 2,
      stderr: 'drydock: unknown command "lese"; run drydock --help for the list\n',
    });
    const misused = await runCli(['leases', '--json=yes']);
    expect(misused.stderr).toBe('drydock: --json takes no value\n(run drydock leases --help for usage)\n');
  });

  it('takes the common flags before the command too, and says which flag is wrong in its own words', async () => {
    // No DRYDOCK_URL: only the flag before the command can point at the server.
    const [before, beforeGroup, equals, after] = await Promise.all([
      runCli(['--server', app.url, '--json', 'blueprint', 'list']),
      runCli(['--json', 'blueprint', 'list'], { env }),
      runCli([`--server=${app.url}`, 'blueprint', 'list', '--json']),
      runCli(['blueprint', 'list', '--json'], { env }),
    ]);
    for (const run of [before, beforeGroup, equals]) expect(run).toEqual(after);
    expect(JSON.parse(after.stdout)).toEqual(expect.arrayContaining([expect.objectContaining({ name: 'ci-hosts' })]));
    const problems = await Promise.all([
      runCli(['--server']),
      runCli(['--verbose', 'leases'], { env }),
      runCli(['leases', '--limit', '-1'], { env }),
      runCli(['leases', '--json=yes'], { env }),
      runCli(['lease', '--type'], { env }),
      runCli(['log', '--id', '1'], { env }),
    ]);
    expect(problems.map((p) => [p.code, p.stderr.split('\n')[0]])).toEqual([
      [2, 'drydock: --server needs a value, and a command after it'],
      [2, 'drydock: unknown flag --verbose before the command; run drydock --help for the commands and their flags'],
      [2, 'drydock: --limit needs a value; one that starts with "-" is written --limit=-VALUE'],
      [2, 'drydock: --json takes no value'],
      [2, 'drydock: --type needs a value'],
      [2, 'drydock: unknown flag --id'],
    ]);
  });

  // Last: the warm hosts it keeps would take the host leases of the tests above.
  it('keeps a warm pool: created with --min-ready, changed with `blueprint warm`, bad values refused', async () => {
    const hosts = {
      services: [
        {
          name: 'warm',
          bindings: [1, 2, 3].map((n) => ({ name: `w${n}`, address: `10.0.3.${n}`, port: 22 })),
        },
      ],
    };
    const created = await runCli(
      ['blueprint', 'create', '--name', 'warm-hosts', '--implementation', 'host-pool', '--config', '-'].concat([
        '--type',
        'warm-host',
        '--limit',
        '2',
        '--min-ready',
        '1',
        '--json',
      ]),
      { env, stdin: JSON.stringify(hosts) },
    );
    expect(created.code).toBe(0);
    const blueprint = JSON.parse(created.stdout) as { databaseId: number; minReady: number };
    expect(blueprint.minReady).toBe(1);
    const ready = (count: number) =>
      waitFor(async () => {
        const active = await db.prisma.resource.count({
          where: { blueprintId: blueprint.databaseId, status: 'ACTIVE' },
        });
        return active === count;
      });
    await ready(1);

    const warmed = await runCli(['blueprint', 'warm', String(blueprint.databaseId), '--min-ready', '2'], { env });
    expect(warmed).toMatchObject({ code: 0, stdout: expect.stringMatching(/"warm-hosts" .*: keeps 2 ready/) });
    await ready(2);
    const shown = await runCli(['blueprint', 'show', String(blueprint.databaseId)], { env });
    expect(shown.stdout).toMatch(/min ready\s+2/);

    const negative = await runCli(['blueprint', 'warm', String(blueprint.databaseId), '--min-ready=-1'], { env });
    expect(negative.code).toBe(2);
    expect(negative.stderr).toMatch(/--min-ready must be a whole number/);
    const pastLimit = await runCli(['blueprint', 'warm', String(blueprint.databaseId), '--min-ready', '3'], { env });
    expect(pastLimit.code).not.toBe(0);
    expect(pastLimit.stderr).toMatch(/minReady/);
    const attributesAlone = await runCli(
      ['blueprint', 'warm', String(blueprint.databaseId), '--warm-attributes', '-'],
      { env, stdin: '{}' },
    );
    expect(attributesAlone.code).toBe(2);
    expect((await db.prisma.blueprint.findUniqueOrThrow({ where: { id: blueprint.databaseId } })).minReady).toBe(2);
  });
});
