import { createServer, type Server } from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCli, type CliResult } from './run-cli.js';

// Every number a command sends has a range; a value outside it is a usage error (exit 2) on one
// line that names the flag and the range, and nothing reaches the server. The server here only
// counts what reaches it.
describe('drydock flag values out of range', () => {
  let server: Server;
  let requests = 0;
  let env: Record<string, string>;
  beforeAll(async () => {
    server = createServer((request, response) => {
      requests++;
      response.writeHead(500).end();
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    env = { DRYDOCK_URL: `http://127.0.0.1:${(server.address() as { port: number }).port}` };
  });
  afterAll(async () => {
    await new Promise((resolve) => server.close(resolve));
  });

  /** Runs each line; returns those that did not end as a usage error whose message matches. */
  async function misfits(cases: [string[], RegExp][]): Promise<string[]> {
    // A few at a time: each is a Node process that loads the CLI.
    const results: CliResult[] = [];
    for (let i = 0; i < cases.length; i += 4)
      results.push(...(await Promise.all(cases.slice(i, i + 4).map(([args]) => runCli(args, { env, stdin: '{}' })))));
    return cases.flatMap(([args, message], i) => {
      const { code, stderr } = results[i]!;
      const [first, hint, ...more] = stderr.split('\n');
      const fits =
        code === 2 &&
        message.test(first!) &&
        /^\(run drydock .+ --help for usage\)$/.test(hint!) &&
        more.join('') === '';
      return fits ? [] : [`drydock ${args.join(' ')} -> ${code}: ${stderr}`];
    });
  }

  it('refuses whole numbers outside what the server takes, naming the flag and the range', async () => {
    const cases: [string[], RegExp][] = [
      [['lease', '--type', 'host', '--count', '0'], /^drydock: --count must be a whole number from 1 to 100, not "0"$/],
      [['lease', '--type', 'host', '--count', '101'], /--count must be a whole number from 1 to 100, not "101"/],
      [['lease', '--type', 'host', '--count', '99999999999'], /--count .* from 1 to 100/],
      [['lease', '--type', 'host', '--priority', '11'], /--priority must be a whole number from -10 to 10/],
      [['lease', '--type', 'host', '--priority=-11'], /--priority .* from -10 to 10, not "-11"/],
      [['lease', '--type', 'host', '--priority', '1.5'], /--priority .* from -10 to 10, not "1.5"/],
      [['lease', '--type', 'host', '--wait-timeout', '0'], /--wait-timeout .* from 1 to 2592000/],
      [['lease', '--type', 'host', '--wait-timeout', '2592001'], /--wait-timeout .* from 1 to 2592000/],
      [['lease', '--type', 'host', '--wait-timeout', '99999999999'], /--wait-timeout .* from 1 to 2592000/],
      [['lease', '--type', 'host', '--heartbeat', '3601'], /--heartbeat .* from 1 to 3600/],
      [['run', '--type', 'host', '--heartbeat', '0', '--', 'true'], /--heartbeat .* from 1 to 3600/],
      [['run', '--type', 'host', '--timeout', '86401', '--', 'true'], /--timeout .* from 1 to 86400/],
      [['run', '--type', 'host', '--wait-timeout', '99999999999', '--', 'true'], /--wait-timeout .* to 2592000/],
      [['command', '--lease', '1', '--timeout', '99999999999', '--', 'true'], /--timeout .* from 1 to 86400/],
      [['command', '--lease', '1', '--timeout', '0', '--', 'true'], /--timeout .* from 1 to 86400/],
      [['queue', '--type', 'host', '--limit', '1001'], /--limit .* from 1 to 1000/],
      [['leases', '--limit', '0'], /--limit must be a whole number 1 or more, not "0"/],
      [['resources', '--limit', 'ten'], /--limit must be a whole number 1 or more, not "ten"/],
      [
        ['blueprint', 'create', '--name', 'b', '--implementation', 'host-pool', '--config', '-', '--limit', '10001'],
        /--limit .* from 1 to 10000/,
      ],
      [['blueprint', 'warm', '1', '--min-ready', '10001'], /--min-ready .* from 0 to 10000/],
    ];
    expect(await misfits(cases)).toEqual([]);
    expect(requests).toBe(0);
  }, 180_000);

  it('refuses durations and times outside what the server takes, naming the flag and the range', async () => {
    const range = (flag: string, value: string) =>
      new RegExp(`^drydock: ${flag} must be a duration from 1s to 24855d .* not "${value}"$`);
    const cases: [string[], RegExp][] = [
      [['lease', '--type', 'host', '--until', '99999999d'], range('--until', '99999999d')],
      [['lease', '--type', 'host', '--until', '24856d'], range('--until', '24856d')],
      [['lease', '--type', 'host', '--until', '0s'], range('--until', '0s')],
      [
        ['lease', '--type', 'host', '--until', '99999999999999999999999h'],
        range('--until', '99999999999999999999999h'),
      ],
      [['lease', '--type', 'host', '--until', 'tomorrow-ish'], range('--until', 'tomorrow-ish')],
      [['lease', '--type', 'host', '--until', '2001-01-01T00:00:00Z'], /^drydock: --until must be in the future/],
      [['token', 'create', '--name', 't', '--expires', '99999999d'], range('--expires', '99999999d')],
      [['token', 'create', '--name', 't', '--expires', '24856d'], range('--expires', '24856d')],
    ];
    expect(await misfits(cases)).toEqual([]);
    expect(requests).toBe(0);
  }, 180_000);

  it('refuses arguments a command does not take, and names the values it does', async () => {
    const cases: [string[], RegExp][] = [
      [['leases', 'ACTIVE'], /^drydock: unexpected argument "ACTIVE"$/],
      [['log', '7'], /^drydock: unexpected argument "7"$/],
      [['token', 'list', 'mine'], /^drydock: unexpected argument "mine"$/],
      [['authorization', 'list', '--state', 'maybe'], /--state must be one of .*, not "maybe"$/],
      [['token', 'create', '--name', 't', '--scope', 'root'], /--scope must be read, lease or admin, not "root"$/],
      ...[
        ['blueprint', 'create', '--name', 'b', '--implementation', 'host-pool', '--config', '-', '--type', ''],
        ['blueprint', 'list', '--type', ' '],
        ['lease', '--type', ''],
        ['queue', '--type='],
        ['candidates', '-t', ''],
      ].map((args): [string[], RegExp] => [
        args,
        /^drydock: --type must name a resource type \(such as host\), not be empty$/,
      ]),
    ];
    expect(await misfits(cases)).toEqual([]);
    expect(requests).toBe(0);
    // A group's subcommand has its own help, which is the one a usage error points at.
    const { stderr } = await runCli(['token', 'create', '--name', 't', '--scope', 'root'], { env });
    expect(stderr).toContain('(run drydock token create --help for usage)');
  }, 180_000);
});
