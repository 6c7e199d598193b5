import { badOperation, invalidGlobalId } from './bad-operations.js';
import type { Prng } from '../support/prng.js';

export interface WsCase {
  category: string;
  /** Send connection_init and wait for the ack before `frames` (graphql-ws refuses anything else first). */
  init: boolean;
  /** The subprotocol asked for; graphql-ws accepts only graphql-transport-ws. */
  protocol: string | undefined;
  frames: (string | Buffer)[];
  /** A subscribe id whose error/complete ends the case; otherwise a ping's pong (or a close) does. */
  awaitId?: string;
  describe(): string;
}

const init = JSON.stringify({ type: 'connection_init' });

function make(category: string, c: Omit<WsCase, 'category' | 'describe' | 'protocol'> & { protocol?: string }): WsCase {
  return {
    category,
    protocol: 'graphql-transport-ws',
    ...c,
    describe: () =>
      `${category}: init=${c.init} frames=${JSON.stringify(
        c.frames.map((f) => (typeof f === 'string' ? f : `<${f.length} binary bytes>`).slice(0, 300)),
      )}`,
  };
}

const subscribe = (id: string, payload: unknown) => JSON.stringify({ id, type: 'subscribe', payload });

type Gen = (r: Prng) => WsCase;

const generators: Record<string, Gen> = {
  'ws-malformed-message': (r) =>
    make('ws-malformed-message', {
      init: r.chance(0.7),
      frames: [
        r.pick([
          'not json',
          '{',
          '[]',
          '[1,2,3]',
          'null',
          '42',
          '"connection_init"',
          '{"type":',
          '{"id": "1"}',
          '{"type": null}',
          '{}',
          '{"type": "subscribe", "id": "1", "payload": ' + '['.repeat(r.int(10, 5_000)),
          r.bytes(r.int(1, 200)).toString('latin1'),
        ]),
      ],
    }),
  'ws-wrong-message-type': (r) =>
    make('ws-wrong-message-type', {
      init: r.chance(0.8),
      frames: [
        JSON.stringify(
          r.pick<unknown>([
            { type: r.word() },
            { type: 5 },
            { type: ['subscribe'] },
            { type: 'connection_ack' },
            { type: 'next', id: '1', payload: { data: {} } },
            { type: 'error', id: '1', payload: [] },
            { type: 'complete', id: r.word() },
            { type: 'complete' },
            { type: 'complete', id: 5 },
            { type: 'pong', payload: r.word() },
            { type: 'ping', payload: 'not an object' },
            { type: 'start', id: '1', payload: { query: '{ viewer { name } }' } },
            { type: 'connection_terminate' },
          ]),
        ),
      ],
    }),
  'ws-before-init': (r) =>
    make('ws-before-init', {
      init: false,
      frames: [
        r.pick([
          subscribe('1', { query: '{ viewer { name } }' }),
          subscribe('1', { query: 'subscription { leasesChanged { id } }' }),
          JSON.stringify({ type: 'complete', id: '1' }),
          JSON.stringify({ type: 'connection_ack' }),
        ]),
      ],
    }),
  'ws-bad-init': (r) =>
    make('ws-bad-init', {
      init: false,
      frames: [
        r.pick([
          JSON.stringify({ type: 'connection_init', payload: r.word() }),
          JSON.stringify({ type: 'connection_init', payload: [1, 2] }),
          JSON.stringify({ type: 'connection_init', payload: 5 }),
          JSON.stringify({ type: 'connection_init', payload: { authorization: `Bearer ${r.word(1, 60)}` } }),
          JSON.stringify({ type: 'connection_init', payload: { token: r.word() } }),
          JSON.stringify({ type: 'connection_init', payload: { authorization: 5, token: {} } }),
          JSON.stringify({ type: 'connection_init', payload: { authorization: 'x'.repeat(100_000) } }),
          JSON.stringify({ type: 'connection_init', payload: { deep: JSON.parse('['.repeat(200) + ']'.repeat(200)) } }),
        ]),
        ...(r.chance(0.3) ? [init] : []),
      ],
    }),
  'ws-double-init': () => make('ws-double-init', { init: true, frames: [init] }),
  'ws-subscribe-bad-payload': (r) => {
    const id = r.word(1, 8);
    const payload = r.pick<unknown>([
      undefined,
      null,
      'query',
      5,
      {},
      { query: 5 },
      { query: null },
      { query: '{ viewer { name } }', variables: 'x' },
      { query: '{ viewer { name } }', variables: [1] },
      { query: '{ viewer { name } }', operationName: 5 },
      { query: '{ viewer { name } }', extensions: 'x' },
    ]);
    const badId = r.pick<unknown>([undefined, 5, null, '', { a: 1 }, id]);
    return make('ws-subscribe-bad-payload', {
      init: true,
      frames: [JSON.stringify({ type: 'subscribe', id: badId, payload })],
    });
  },
  'ws-duplicate-id': (r) => {
    const query = `subscription { leaseEvents(leaseId: "${invalidGlobalId(r).replace(/["\\]/g, '')}") { cursor } }`;
    return make('ws-duplicate-id', {
      init: true,
      frames: [subscribe('dup', { query: 'subscription { leasesChanged { id } }' }), subscribe('dup', { query })],
    });
  },
  'ws-bad-operation': (r) => {
    const op = badOperation(r);
    const id = `op${r.int(0, 1_000_000)}`;
    return {
      ...make(op.category, {
        init: true,
        frames: [
          subscribe(id, {
            query: op.query,
            ...(op.variables ? { variables: op.variables } : {}),
            ...(op.operationName !== undefined ? { operationName: op.operationName } : {}),
          }),
        ],
        awaitId: id,
      }),
      category: `ws-${op.category}`,
    };
  },
  'ws-bad-lease-subscription': (r) => {
    const id = `s${r.int(0, 1_000_000)}`;
    return make('ws-bad-lease-subscription', {
      init: true,
      frames: [
        subscribe(id, {
          query: 'subscription ($id: ID!, $after: String) { leaseEvents(leaseId: $id, after: $after) { cursor } }',
          variables: {
            id: invalidGlobalId(r),
            after: r.pick<unknown>(['-1', 'abc', '99999999999999999999999', '', '1.5', 5, {}, null]),
          },
        }),
      ],
      awaitId: id,
    });
  },
  'ws-oversized-frame': (r) =>
    make('ws-oversized-frame', {
      init: r.chance(0.5),
      frames: [
        r.chance(0.5)
          ? Buffer.alloc(r.int(262_145, 600_000), 0x61)
          : subscribe('big', { query: '{ viewer { name } }', variables: { x: 'a'.repeat(r.int(262_145, 600_000)) } }),
      ],
    }),
  'ws-binary-frame': (r) => make('ws-binary-frame', { init: r.chance(0.5), frames: [r.bytes(r.int(1, 2_048))] }),
  'ws-wrong-subprotocol': (r) =>
    make('ws-wrong-subprotocol', {
      init: false,
      protocol: r.pick([undefined, 'graphql-ws', 'nope', 'graphql-transport-ws-x']),
      frames: [init],
    }),
};

export function wsCase(r: Prng): WsCase {
  const names = Object.keys(generators);
  // Operations carry most of the variety; give them as much room as all envelope kinds together.
  let name = r.chance(0.4) ? 'ws-bad-operation' : r.pick(names);
  if (name === 'ws-oversized-frame' && r.chance(0.7)) name = 'ws-binary-frame';
  return generators[name]!(r);
}
