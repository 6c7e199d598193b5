// Every shell command in the README and docs/ is run: the `drydock` ones here, against a started
// server, and the rest by CI (.ci/run), which this test checks names each of them. The typed
// client of docs/clients.md is a package (examples/typed-client), built and run here too.
import { execFile } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { serve, type App } from '../../src/app.js';
import { loadConfig } from '../../src/config.js';
import { projectRoot } from '../../src/db/migrations-folder.js';
import { createLogger } from '../../src/logger.js';
import { createTestDatabase, type TestDatabase } from '../support/database.js';
import { graphqlRequest } from '../support/http.js';
import { binArgs } from '../cli/run-cli.js';

const run = promisify(execFile);
const quiet = createLogger('error', () => {});
const docs = ['README.md', ...readdirSync(join(projectRoot, 'docs')).map((f) => `docs/${f}`)];

/** The commands of ```sh blocks, and the `$ ` lines of ```console blocks, of one markdown file. */
function commandsOf(file: string): string[] {
  const text = readFileSync(join(projectRoot, file), 'utf8');
  const commands: string[] = [];
  for (const [, lang, body] of text.matchAll(/^```(sh|console)\n([\s\S]*?)^```/gm)) {
    for (const line of body!.split('\n')) {
      const command = lang === 'console' ? (line.startsWith('$ ') ? line.slice(2) : '') : line;
      const bare = command.replace(/\s+#.*$/, '').trim();
      if (bare) commands.push(bare);
    }
  }
  return commands;
}

const all = docs.flatMap((file) => commandsOf(file).map((command) => ({ file, command })));
const isDrydock = (command: string) => /(^|\| )(npx )?drydock /.test(command);

describe('the commands in the README and docs', () => {
  let db: TestDatabase;
  let app: App;
  let leaseId = 0;

  beforeAll(async () => {
    db = await createTestDatabase('pglite');
    app = await serve(db, { ...loadConfig({}), port: 0, shutdownTimeoutMs: 2_000, allowLocalTransport: true }, quiet);
    // What the examples assume: a host pool "build-hosts" with a linux host build/h1 that runs commands.
    const binding = { name: 'h1', address: '10.0.0.1', port: 22, attributes: { platform: 'linux' } };
    const config = { services: [{ name: 'build', bindings: [{ ...binding, transport: { kind: 'local' } }] }] };
    const { body } = await graphqlRequest(
      app.graphqlUrl,
      'mutation ($config: JSON!) { createBlueprint(input: { name: "build-hosts", implementation: "host-pool", config: $config }) { __typename } }',
      { config },
    );
    expect(body).toEqual({ data: { createBlueprint: { __typename: 'BlueprintPayload' } } });
  });
  afterAll(async () => {
    await app?.close();
    await db?.dispose();
  });

  it('finds commands to check', () => {
    expect(all.filter((c) => isDrydock(c.command)).length).toBeGreaterThanOrEqual(3);
  });

  it.each(all.filter((c) => isDrydock(c.command)))('$file: $command', async ({ command }) => {
    // The examples name lease 7; here it is whichever lease the previous example got.
    const line = command
      .replace(/(^|\| )drydock /, `$1${[process.execPath, ...binArgs].join(' ')} `)
      .replace(/--(lease|id) 7\b/, `--$1 ${leaseId}`)
      .replace(/ --until 2h/, '');
    const { stdout, stderr } = await run('sh', ['-c', line], {
      cwd: projectRoot,
      env: { ...process.env, DRYDOCK_URL: app.url },
      timeout: 60_000,
    });
    const leased = /requested lease (\d+)/.exec(stderr + stdout);
    if (/ lease --type/.test(command) && leased) leaseId = Number(leased[1]);
    expect(stdout.length).toBeGreaterThan(0);
  });

  it("docs/clients.md's typed client: generates, compiles under strict TypeScript and leases a host", async () => {
    const example = join(projectRoot, 'examples/typed-client');
    const bin = (name: string) => join(projectRoot, 'node_modules/.bin', name);
    await run(bin('graphql-codegen'), ['--config', 'codegen.ts'], { cwd: example });
    await run(bin('tsc'), ['-p', '.'], { cwd: example });
    const { stdout } = await run(process.execPath, ['dist/main.js'], {
      cwd: example,
      env: { ...process.env, DRYDOCK_URL: app.url },
      timeout: 60_000,
    });
    expect(stdout).toMatch(/^requested lease \d+$/m);
    expect(stdout).toMatch(/lease-activated -> ACTIVE/);
    expect(stdout).toContain('connect to {"');
    expect(stdout.trim().split('\n').at(-1)).toBe('lease destroyed');
  });

  it('leaves every other command to CI, which runs each of them', () => {
    const ci = readFileSync(join(projectRoot, '.ci/run'), 'utf8');
    const others = all.filter((c) => !isDrydock(c.command));
    const missing = others.filter(({ command }) =>
      command.split(/\s*&&\s*/).some((part) => !ci.includes(part.replace(/^\w+=\S+ /, ''))),
    );
    expect(missing).toEqual([]);
  });
});
