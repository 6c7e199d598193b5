// kill -9 a server while a command it started runs (a working copy's `git clone`): the command
// dies with it instead of running on with nobody to read its output, and the next server on the
// same data clears what the interrupted clone left behind and clones again.
import { execFileSync } from 'node:child_process';
import { chmod, mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { existsSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createGitFixtures, fileIn, git, type GitFixtures, type GitOrigin } from '../support/git-fixtures.js';
import { graphqlRequest } from '../support/http.js';
import { startServerProcess, type ServerProcess } from '../support/process.js';
import { waitFor } from '../support/wait.js';

/** The process group of `pid`, from /proc. */
function processGroup(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  return Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[2]);
}

/** Whether the server's watcher of process group `pgid` runs (src/transports/process.ts). */
async function watched(pgid: number): Promise<boolean> {
  for (const entry of await readdir('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    const argv = await readFile(`/proc/${entry}/cmdline`, 'utf8').catch(() => '');
    if (argv.split('\0').slice(-3, -1).join(' ') === `drydock-group-watcher ${pgid}`) return true;
  }
  return false;
}

/** A zombie (killed, waiting for init to reap it) counts as gone. */
function running(pid: number): boolean {
  if (!existsSync(`/proc/${pid}/stat`)) return false;
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3) !== 'Z';
}

describe('kill -9 a server while its git clone runs', () => {
  let fixtures: GitFixtures;
  let origin: GitOrigin;
  let dir: string;
  const processes: ServerProcess[] = [];
  let hungPid: number | undefined;
  beforeAll(async () => {
    fixtures = await createGitFixtures();
    origin = await fixtures.origin('app');
    dir = await mkdtemp(join(tmpdir(), 'drydock-orphans-'));
    // A `git` ahead of the real one on the server's PATH: the first clone starts, leaves a half-made
    // repository and hangs, as the clone of a large repository would; everything else is real git.
    const realGit = execFileSync('sh', ['-c', 'command -v git'], { encoding: 'utf8' }).trim();
    await mkdir(join(dir, 'bin'));
    await writeFile(
      join(dir, 'bin', 'git'),
      [
        '#!/bin/sh',
        'case " $* " in *" clone "*)',
        `  if mkdir '${dir}/hung' 2>/dev/null; then`,
        '    for target; do :; done',
        '    mkdir -p "$target/.git" && : > "$target/half"',
        `    echo $$ > '${dir}/hung/pid'`,
        '    exec sleep 300',
        '  fi;;',
        'esac',
        `exec '${realGit}' "$@"`,
        '',
      ].join('\n'),
    );
    await chmod(join(dir, 'bin', 'git'), 0o755);
  });
  afterAll(async () => {
    for (const p of processes) await p.stop('SIGKILL');
    if (hungPid !== undefined && running(hungPid)) process.kill(hungPid, 'SIGKILL');
    await fixtures?.dispose();
    await rm(dir, { recursive: true, force: true });
  });

  const env = () => ({
    DATA_DIR: join(dir, 'data'),
    PATH: `${join(dir, 'bin')}:${process.env['PATH'] ?? ''}`,
    ALLOW_LOCAL_TRANSPORT: 'true',
    LOG_LEVEL: 'warn',
  });

  it('the clone dies with the server, and the next server clones again', async () => {
    const a = await startServerProcess(env());
    processes.push(a);
    const call = async <T>(query: string, variables: Record<string, unknown> = {}) => {
      const { body } = await graphqlRequest<T>(`${a.url}/graphql`, query, variables);
      expect(body.errors).toBeUndefined();
      return body.data!;
    };
    const create = (name: string, implementation: string, config: unknown) =>
      call<{ createBlueprint: { blueprint: { id: string; principal: { id: string } | null } } }>(
        `mutation ($input: CreateBlueprintInput!) {
          createBlueprint(input: $input) { ... on BlueprintPayload { blueprint { id principal { id } } } } }`,
        { input: { name, implementation, config } },
      );
    const hosts = await create('hosts', 'host-pool', {
      services: [
        { name: 'local', bindings: [{ name: 'here', address: '127.0.0.1', port: 22, transport: { kind: 'local' } }] },
      ],
    });
    const copies = await create('copies', 'working-copy', { root: join(dir, 'copies') });
    const requested = await call<{ requestBlueprintAuthorization: { authorization: { id: string } } }>(
      'mutation ($b: ID!, $p: ID!) { requestBlueprintAuthorization(blueprintId: $b, principalId: $p) { ... on AuthorizationPayload { authorization { id } } } }',
      { b: hosts.createBlueprint.blueprint.id, p: copies.createBlueprint.blueprint.principal!.id },
    );
    await call('mutation ($id: ID!) { setBlueprintAuthorization(id: $id, state: AUTHORIZED) { __typename } }', {
      id: requested.requestBlueprintAuthorization.authorization.id,
    });
    const lease = await call<{ requestLease: { leases: { id: string }[] } }>(
      'mutation ($a: JSON) { requestLease(input: { resourceType: "working-copy", attributes: $a }) { ... on RequestLeasePayload { leases { id } } } }',
      { a: { repositories: { src: { url: origin.url } } } },
    );
    const leaseId = lease.requestLease.leases[0]!.id;

    const pidFile = join(dir, 'hung', 'pid');
    hungPid = await waitFor(async () => Number((await readFile(pidFile, 'utf8').catch(() => '')).trim()), 60_000);
    expect(running(hungPid)).toBe(true);
    // The server starts the command's watcher just after the command; a kill in between (which a
    // busy machine can stretch to where this test's poll lands) would leave the command unwatched.
    const pgid = processGroup(hungPid);
    await waitFor(() => watched(pgid), 10_000);

    expect(await a.stop('SIGKILL')).toBe('SIGKILL');
    await waitFor(() => !running(hungPid!), 10_000);

    const b = await startServerProcess(env());
    processes.push(b);
    await waitFor(async () => {
      const { body } = await graphqlRequest<{ lease: { status: string } }>(
        `${b.url}/graphql`,
        'query ($id: ID!) { lease(id: $id) { status } }',
        { id: leaseId },
      );
      return body.data?.lease.status === 'ACTIVE';
    }, 30_000);
    const [copy] = await readdir(join(dir, 'copies'));
    const src = join(dir, 'copies', copy!, 'src');
    expect(await fileIn(src, 'half')).toBeNull();
    expect(await git(src, 'rev-parse', 'HEAD')).toBe(origin.commits.main);
  }, 180_000);
});
