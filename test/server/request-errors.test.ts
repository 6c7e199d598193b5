import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { CloseEvent } from 'ws';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { graphqlRequest } from '../support/http.js';
import { startServerProcess, type ServerProcess } from '../support/process.js';
import { waitFor } from '../support/wait.js';
import { wsClient } from '../support/ws.js';

type Line = Record<string, unknown> & { msg: string };
type Errors = { message: string; extensions?: Record<string, unknown> }[];

const page = 'query Page($n: Int) { leases(first: $n) { edges { node { id } } } }';
const needed = 'query Needed($n: Int!) { leases(first: $n) { edges { node { id } } } }';
const literal = 'query Literal { leases(first: -1) { edges { node { id } } } }';
const subscription = 'subscription Events($id: ID!) { leaseEvents(leaseId: $id) { __typename } }';

/** The variables and arguments a client gets wrong, and what it is told and what the log records. */
const cases: {
  name: string;
  query: string;
  variables?: Record<string, unknown>;
  /** The HTTP status: 400 for a request refused before it ran, 200 for a field's error. */
  status: number;
  outcome: 'invalid' | 'error';
}[] = [
  { name: 'a non-integer for an Int', query: page, variables: { n: 1.5 }, status: 400, outcome: 'invalid' },
  { name: 'a string for an Int', query: page, variables: { n: 'ten' }, status: 400, outcome: 'invalid' },
  { name: 'a required variable left out', query: needed, status: 400, outcome: 'invalid' },
  { name: 'a negative page size in a variable', query: page, variables: { n: -1 }, status: 200, outcome: 'error' },
  { name: 'a negative page size in the query', query: literal, status: 200, outcome: 'error' },
];

const operationOf = (query: string) => /^\w+ (\w+)/.exec(query)![1]!;

/** The errors of one operation over graphql-ws, on a connection of its own. */
function overWs(url: string, query: string, variables?: Record<string, unknown>): Promise<Errors> {
  const client = wsClient(url);
  return new Promise<Errors>((resolve, reject) => {
    client.subscribe(
      { query, ...(variables ? { variables } : {}) },
      {
        next: (value) => value.errors && resolve(value.errors as unknown as Errors),
        error: (error) => (Array.isArray(error) ? resolve(error as Errors) : reject(error as Error)),
        complete: () => reject(new Error('completed without errors')),
      },
    );
  }).finally(() => client.dispose());
}

// A real process with LOG_FORMAT=json: what it writes on stderr is what an operator's collector reads.
describe('errors of bad variables and oversized WebSocket messages', () => {
  let dataDir: string;
  let server: ServerProcess;
  let stderr = '';
  let graphqlUrl: string;
  const maxBodyBytes = 16_384;
  beforeAll(async () => {
    dataDir = await mkdtemp(join(tmpdir(), 'drydock-request-errors-'));
    server = await startServerProcess(
      { DATA_DIR: dataDir, LOG_FORMAT: 'json', MAX_BODY_BYTES: String(maxBodyBytes) },
      120_000,
    );
    server.child.stderr!.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    graphqlUrl = `${server.url}/graphql`;
  }, 150_000);
  afterAll(async () => {
    expect(await server?.stop('SIGTERM')).toBe(0);
    await rm(dataDir, { recursive: true, force: true });
  });

  const stderrLines = () => stderr.split('\n').filter((line) => line !== '');
  const entries = () =>
    stderrLines()
      .map((line) => JSON.parse(line) as Line)
      .filter((line) => line.msg === 'graphql operation');

  /** Runs `send` and returns the one operation entry it wrote. */
  async function entryOf(send: () => Promise<void>): Promise<Line> {
    const before = entries().length;
    await send();
    return waitFor(() => entries().length > before && entries()[before]);
  }

  for (const { name, query, variables, status, outcome } of cases) {
    it(`gives ${name} the code BAD_USER_INPUT over HTTP, and the log records it`, async () => {
      const entry = await entryOf(async () => {
        const response = await graphqlRequest(graphqlUrl, query, variables);
        expect(response.status).toBe(status);
        expect(response.body.errors?.length).toBeGreaterThan(0);
        for (const error of response.body.errors!) expect(error.extensions?.['code']).toBe('BAD_USER_INPUT');
      });
      expect(entry).toMatchObject({ operation: operationOf(query), outcome, errorCodes: ['BAD_USER_INPUT'] });
    });

    it(`gives ${name} the code BAD_USER_INPUT over graphql-ws, and the log records it`, async () => {
      const entry = await entryOf(async () => {
        const errors = await overWs(graphqlUrl, query, variables);
        expect(errors.length).toBeGreaterThan(0);
        for (const error of errors) expect(error.extensions?.['code']).toBe('BAD_USER_INPUT');
      });
      expect(entry).toMatchObject({ operation: operationOf(query), outcome, errorCodes: ['BAD_USER_INPUT'] });
    });
  }

  it('gives a subscription with a variable left out BAD_USER_INPUT over graphql-ws, and the log records it', async () => {
    const entry = await entryOf(async () => {
      const errors = await overWs(graphqlUrl, subscription);
      expect(errors.map((error) => error.extensions?.['code'])).toEqual(['BAD_USER_INPUT']);
    });
    expect(entry).toMatchObject({ operation: 'Events', outcome: 'invalid', errorCodes: ['BAD_USER_INPUT'] });
  });

  it('closes a socket that sends a message past the limit with 1009 and a reason, in one JSON log line', async () => {
    const linesBefore = stderrLines().length;
    const client = wsClient(graphqlUrl);
    const closed = new Promise<CloseEvent>((resolve, reject) => {
      client.subscribe(
        { query: page, variables: { padding: 'x'.repeat(maxBodyBytes) } },
        {
          next: () => reject(new Error('answered')),
          error: (error) => resolve(error as CloseEvent),
          complete: () => {},
        },
      );
    }).finally(() => client.dispose());
    const event = await closed;
    expect(event.code).toBe(1009);
    expect(event.reason).toBe(`Message too big: more than ${maxBodyBytes} bytes`);

    const refused = await waitFor(() =>
      stderrLines()
        .slice(linesBefore)
        .find((line) => line.includes('graphql-ws')),
    );
    // Every line since is one JSON object: no stack trace printed around the logger.
    const written = stderrLines().slice(linesBefore);
    for (const line of written) expect(() => JSON.parse(line) as unknown, line).not.toThrow();
    expect(JSON.parse(refused)).toMatchObject({
      level: 'warn',
      msg: 'graphql-ws message refused',
      closeCode: 1009,
      error: 'WS_ERR_UNSUPPORTED_MESSAGE_LENGTH',
    });

    // The process goes on serving, on both transports.
    const { body } = await graphqlRequest(graphqlUrl, '{ leases { edges { node { id } } } }');
    expect(body).toEqual({ data: { leases: { edges: [] } } });
    const errors = await overWs(graphqlUrl, literal);
    expect(errors[0]?.message).toContain('first');
  });
});
