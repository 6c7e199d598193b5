import { badOperation, type BadOperation } from './bad-operations.js';
import type { Prng } from '../support/prng.js';

export interface HttpCase {
  category: string;
  method: 'GET' | 'POST' | 'PUT' | 'DELETE' | 'PATCH' | 'OPTIONS';
  /** Appended to the GraphQL URL. */
  search?: string;
  headers: Record<string, string>;
  body?: Buffer | string;
  /** What the case was, short enough to print when it fails. */
  describe(): string;
}

const json = { 'content-type': 'application/json', accept: 'application/graphql-response+json, application/json' };

function describeBody(body: Buffer | string | undefined): string {
  if (body === undefined) return '(no body)';
  const text = typeof body === 'string' ? body : body.toString('latin1');
  return text.length > 300 ? `${JSON.stringify(text.slice(0, 300))}… (${text.length} bytes)` : JSON.stringify(text);
}

function make(category: string, init: Omit<HttpCase, 'category' | 'describe'>): HttpCase {
  return {
    category,
    ...init,
    describe: () =>
      `${category}: ${init.method} ?${init.search ?? ''} ${JSON.stringify(init.headers)} ${describeBody(init.body)}`,
  };
}

const post = (category: string, body: Buffer | string, headers: Record<string, string> = json) =>
  make(category, { method: 'POST', headers, body });

function operationBody(op: BadOperation): string {
  return JSON.stringify({
    query: op.query,
    ...(op.variables ? { variables: op.variables } : {}),
    ...(op.operationName !== undefined ? { operationName: op.operationName } : {}),
  });
}

type Gen = (r: Prng) => HttpCase;

const generators: Record<string, Gen> = {
  'malformed-json': (r) => {
    const valid = operationBody({ category: '', query: '{ viewer { name } }' });
    return post(
      'malformed-json',
      r.pick([
        valid.slice(0, r.int(0, valid.length - 1)),
        valid + r.pick(['}', ',', 'x', '\u0000', ']']),
        `{"query": "{ viewer { name } }", }`,
        `{'query': '{ viewer { name } }'}`,
        `{"query": NaN}`,
        `{"query": "{ viewer { name } }", "variables": {"a": undefined}}`,
        '{"query": "\\ud800"}',
        '{"query": "\\x41"}',
        '{{{{',
        'null',
        '"just a string"',
        '12345',
        'true',
        '',
        ' ',
        '{"__proto__": {"query": "{ viewer { name } }"}}',
        '{"constructor": {"prototype": {"polluted": true}}, "query": "{ viewer { name } }"}',
        '['.repeat(r.int(100, 5_000)),
        `{"query": "{ viewer { name } }", "variables": ${'['.repeat(r.int(100, 5_000))}}`,
      ]),
    );
  },
  'bad-operation-shape': (r) =>
    post(
      'bad-operation-shape',
      JSON.stringify(
        r.pick<unknown>([
          {},
          { query: 5 },
          { query: null },
          { query: ['{ viewer { name } }'] },
          { query: { a: 1 } },
          { query: '{ viewer { name } }', variables: 'not an object' },
          { query: '{ viewer { name } }', variables: [1, 2] },
          { query: '{ viewer { name } }', operationName: 5 },
          { query: '{ viewer { name } }', extensions: [] },
          { query: '{ viewer { name } }', extensions: { persistedQuery: { sha256Hash: r.word(), version: 1 } } },
          { extensions: { persistedQuery: { sha256Hash: 'abc', version: 1 } } },
          { mutation: '{ viewer { name } }' },
          { query: '' },
          { query: '   ' },
          { query: '# only a comment' },
        ]),
      ),
    ),
  'wrong-content-type': (r) => {
    const body = operationBody(badOperation(r));
    return post(
      'wrong-content-type',
      r.pick([
        body,
        'query={viewer{name}}',
        r.word(),
        '--x\r\nContent-Disposition: form-data; name="operations"\r\n\r\n{}\r\n--x--',
      ]),
      {
        'content-type': r.pick([
          'text/plain',
          'application/x-www-form-urlencoded',
          'multipart/form-data; boundary=x',
          'multipart/form-data',
          'application/graphql',
          'application/xml',
          'application/json; charset=utf-16',
          'application/json; charset=nope',
          'image/png',
          '',
          ';;;',
        ]),
        accept: r.pick(['*/*', 'text/html', 'application/xml', 'text/event-stream', 'multipart/mixed', '']),
      },
    );
  },
  'huge-body': (r) =>
    r.chance(0.1)
      ? post('huge-body', `{"query": "{ viewer { name } }", "x": "${'a'.repeat(300_000)}"}`, {
          ...json,
          'content-length': String(r.int(262_145, 10_000_000_000)),
        })
      : post('huge-body', `{"query": "{ viewer { name } }", "x": "${'a'.repeat(r.int(262_145, 400_000))}"}`),
  'random-bytes': (r) =>
    post('random-bytes', r.bytes(r.int(1, 4_096)), {
      'content-type': r.pick(['application/json', 'application/octet-stream']),
    }),
  'batched-array': (r) =>
    post(
      'batched-array',
      JSON.stringify(
        r.pick<unknown>([
          [],
          [{ query: '{ viewer { name } }' }, { query: '{ viewer { id } }' }],
          Array.from({ length: r.int(2, 500) }, () => ({ query: badOperation(r).query })),
          [[[]]],
          [null],
          [1, 'a', true],
        ]),
      ),
    ),
  'bad-get': (r) => {
    const op = badOperation(r);
    const long = 'a'.repeat(r.int(9_000, 70_000));
    return make('bad-get', {
      method: 'GET',
      headers: { accept: r.pick(['application/json', 'text/html', 'text/event-stream', '*/*']) },
      search: r.pick([
        'query=%ZZ',
        'query=%',
        `query=${encodeURIComponent(op.query.slice(0, 4_000))}`,
        'query=mutation%20%7B%20releaseLease(id%3A%20%22x%22)%20%7B%20__typename%20%7D%20%7D',
        'query={viewer{name}}&variables=not-json',
        'query={viewer{name}}&variables=[1]',
        'query={viewer{name}}&extensions={',
        'query={viewer{name}}&operationName=',
        'query=a&query=b',
        `query=${long}`,
        'variables={}',
        '',
        '&&&==',
        `${r.word()}=${r.word()}`,
      ]),
    });
  },
  'bad-method': (r) =>
    make('bad-method', {
      method: r.pick(['PUT', 'DELETE', 'PATCH', 'OPTIONS'] as const),
      headers: json,
      body: operationBody(badOperation(r)),
    }),
  'bad-token': (r) =>
    post('bad-token', operationBody({ category: '', query: '{ viewer { name } }' }), {
      ...json,
      authorization: r.pick([
        'Bearer',
        'Bearer ',
        `Bearer ${r.word(1, 80)}`,
        `Basic ${r.word()}`,
        r.word(),
        `Bearer ${'x'.repeat(r.int(1_000, 6_000))}`,
        'Bearer dd_' + r.word(40, 40),
      ]),
    }),
};

const operationWeight = 2;

/** A bad request: often a bad operation in a well-formed envelope, otherwise a bad envelope. */
export function httpCase(r: Prng): HttpCase {
  const envelopes = Object.keys(generators);
  if (r.next() < operationWeight / (operationWeight + 1)) {
    const op = badOperation(r);
    return post(op.category, operationBody(op));
  }
  // Huge bodies cost the most to send; a few hundred of them prove the point.
  const category = r.pick(envelopes);
  if (category === 'huge-body' && r.chance(0.7)) return generators['malformed-json']!(r);
  return generators[category]!(r);
}
