import { existsSync, readFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { serve, type App } from '../../src/app.js';
import { loadConfig } from '../../src/config.js';
import { createLogger } from '../../src/logger.js';
import { createTestDatabase, type TestDatabase } from '../support/database.js';
import { runCli, startCli } from './run-cli.js';

// The real `drydock` binary running commands through a lease on a real server, whose host-pool
// binding uses the local transport.

const quiet = createLogger('error', () => {});

/** A zombie (killed, not yet reaped by init) counts as gone. */
function running(pid: number): boolean {
  if (!existsSync(`/proc/${pid}/stat`)) return false;
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3) !== 'Z';
}

describe('drydock command', () => {
  let db: TestDatabase;
  let app: App;
  let env: Record<string, string>;

  beforeAll(async () => {
    db = await createTestDatabase('pglite');
    app = await serve(db, { ...loadConfig({}), port: 0, shutdownTimeoutMs: 2_000, allowLocalTransport: true }, quiet);
    env = { DRYDOCK_URL: app.url };
    const created = await runCli(
      ['blueprint', 'create', '--name', 'here', '--implementation', 'host-pool', '--config', '-'],
      {
        env,
        stdin: JSON.stringify({
          services: [
            { name: 'local', bindings: [{ name: 'h1', address: '127.0.0.1', port: 22, transport: { kind: 'local' } }] },
          ],
        }),
      },
    );
    expect(created.stderr).toBe('');
    const leased = await runCli(['lease', '--type', 'host'], { env });
    expect(leased.stdout).toMatch(/lease 1 is ACTIVE/);
  });
  afterAll(async () => {
    await app.close();
    await db.dispose();
  });

  it("streams the command's stdout and stderr to its own and exits with its code", async () => {
    const result = await runCli(['command', '--lease', '1', '--', 'sh', '-c', 'echo out; echo err >&2; exit 5'], {
      env,
    });
    expect(result).toEqual({ code: 5, stdout: 'out\n', stderr: 'err\n' });
  });

  it('passes the arguments after -- as they are, flags and shell syntax included', async () => {
    const result = await runCli(['command', '--lease', '1', '--', 'printf', '[%s]\\n', 'a b', '$HOME', '--json', ''], {
      env,
    });
    expect(result).toEqual({ code: 0, stdout: '[a b]\n[$HOME]\n[--json]\n[]\n', stderr: '' });
  });

  it('exits 124 when the command times out', async () => {
    const result = await runCli(['command', '--lease', '1', '--timeout', '1', '--', 'sleep', '30'], { env });
    expect(result.code).toBe(124);
    expect(result.stderr).toMatch(/timed out/);
  });

  it('kills the command on Ctrl-C and exits 130', async () => {
    const cli = startCli(['command', '--lease', '1', '--', 'sh', '-c', 'echo $$; exec sleep 60'], { env });
    await cli.waitFor(/^\d+\n/);
    const pid = Number(cli.stdout().trim());
    cli.child.kill('SIGINT');
    expect(await cli.exited).toBe(130);
    const deadline = Date.now() + 30_000;
    while (running(pid) && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 50));
    expect(running(pid)).toBe(false);
  });

  it("exits with the CLI's codes when the command cannot run", async () => {
    const missing = await runCli(['command', '--lease', '999', '--', 'true'], { env });
    expect(missing).toMatchObject({ code: 1, stdout: '', stderr: expect.stringMatching(/lease 999 does not exist/) });
    const noCommand = await runCli(['command', '--lease', '1'], { env });
    expect(noCommand).toMatchObject({ code: 2, stderr: expect.stringMatching(/give the command to run after --/) });
    const noLease = await runCli(['command', '--', 'true'], { env });
    expect(noLease).toMatchObject({ code: 2, stderr: expect.stringMatching(/--lease ID is required/) });
    const unreachable = await runCli(['command', '--lease', '1', '--server', 'http://127.0.0.1:1', '--', 'true'], {
      env,
    });
    expect(unreachable.code).toBe(3);
  });
});
