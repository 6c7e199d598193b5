import type { Prng } from '../support/prng.js';

/** A GraphQL operation that must be refused: it can be sent over HTTP or in a graphql-ws subscribe. */
export interface BadOperation {
  category: string;
  query: string;
  variables?: Record<string, unknown>;
  operationName?: string;
}

const b64 = (text: string) => Buffer.from(text).toString('base64');

/** Global ids that name nothing: wrong type, not a number, out of range, not base64 at all. */
export function invalidGlobalId(r: Prng): string {
  return r.pick([
    () => b64(`Lease:${r.word()}`),
    () => b64(`Lease:-${r.int(1, 1000)}`),
    () => b64(`Lease:${'9'.repeat(r.int(11, 40))}`),
    () => b64(`Lease:${r.int(100_000, 999_999)}`),
    () => b64(`Lease:1.5`),
    () => b64(`Lease:1e3`),
    () => b64(`Lease:NaN`),
    () => b64(`Lease:`),
    () => b64(`:1`),
    () => b64(`Blueprint:1`),
    () => b64(`Resource:1`),
    () => b64(`Principal:1`),
    () => b64(`${r.word()}:1`),
    () => b64(`Lease:1:2`),
    () => b64('\u0000\uffff'),
    () => r.word(1, 40),
    () => '',
    () => '====',
    () => r.bytes(r.int(1, 30)).toString('latin1'),
    () => '💥'.repeat(r.int(1, 20)),
  ])();
}

/** Lenient spellings of real ids: only ever read, never passed to a mutation, since accepting them is not wrong. */
function oddButReadableId(r: Prng): string {
  return r.pick([b64('Lease:01'), b64('Lease: 1'), b64('Lease:1 '), b64('Lease:0x1'), b64('Lease:+1'), 'TGVhc2U6MQ']);
}

function nested(depth: number, open: (i: number) => string, close: string, leaf: string): string {
  let out = '';
  for (let i = 0; i < depth; i++) out += open(i);
  out += leaf;
  for (let i = 0; i < depth; i++) out += close;
  return out;
}

function deepJson(r: Prng, depth: number): unknown {
  let value: unknown = r.word();
  for (let i = 0; i < depth; i++) value = r.chance(0.5) ? [value] : { [r.word(1, 3)]: value };
  return value;
}

const wrongValues = (r: Prng): unknown[] => [
  {},
  [],
  [[]],
  true,
  false,
  1.5,
  -0.25,
  1e300,
  { id: r.word() },
  [{ a: 1 }],
  { nested: deepJson(r, 5) },
];

type Gen = (r: Prng) => BadOperation;

const generators: Record<string, Gen> = {
  'syntax-error': (r) => ({
    category: 'syntax-error',
    query: r.pick([
      '{',
      '}',
      '{ viewer { name }',
      'query (',
      'mutation { releaseLease(id: ) { __typename } }',
      `{ viewer { ${r.word()}: } }`,
      '"unterminated',
      '{ viewer(first: 1 { name } }',
      `query ${r.word()} $$$ {}`,
      '{ ...on }',
      'fragment on on on { id }',
      `{ lease(id: "\\u${r.word(1, 3)}") { id } }`,
      r.bytes(r.int(1, 64)).toString('latin1'),
    ]),
  }),
  'deep-selection': (r) => {
    const depth = r.int(13, 400);
    return {
      category: 'deep-selection',
      query: r.chance(0.5)
        ? `{ viewer ${nested(depth, () => '{ tokens { principal ', '} }', '{ name }')} }`
        : nested(depth, () => `{ ${r.word(1, 4)} `, '}', ''),
    };
  },
  'deep-input': (r) => {
    const depth = r.int(50, 3_000);
    return r.pick<() => BadOperation>([
      () => ({
        category: 'deep-input',
        query: `query ($a: JSON) { leaseCandidates(input: { resourceType: "${r.word()}", attributes: $a }) { __typename } }`,
        variables: { a: deepJson(r, depth) },
      }),
      () => ({
        category: 'deep-input',
        query: `query ($a: JSON) { leases(filter: { attributes: $a }) { edges { node { id } } } }`,
        variables: { a: deepJson(r, depth) },
      }),
      () => ({
        category: 'deep-input',
        query: `{ leases(filter: ${nested(depth, () => '{ attributes: ', '}', '1')}) { edges { cursor } } }`,
      }),
      () => ({
        category: 'deep-input',
        query: `{ leaseCandidates(input: { resourceType: "x", attributes: ${nested(depth, () => '[', ']', '1')} }) { __typename } }`,
      }),
    ])();
  },
  'wrong-variable-type': (r) => {
    const value = r.pick(wrongValues(r));
    return r.pick<() => BadOperation>([
      () => ({
        category: 'wrong-variable-type',
        query: 'mutation ($id: ID!) { releaseLease(id: $id) { __typename } }',
        variables: { id: value },
      }),
      () => ({
        category: 'wrong-variable-type',
        query:
          'mutation ($n: Int) { requestLease(input: { resourceType: "host", count: $n }) { __typename ... on Error { message } } }',
        variables: { n: r.pick(['x', '1', true, 1.5, {}, [1, 2], 2 ** 31, -(2 ** 31) - 1]) },
      }),
      () => ({
        category: 'wrong-variable-type',
        query: 'mutation ($input: RequestLeaseInput!) { requestLease(input: $input) { __typename } }',
        variables: { input: r.pick([value, { resourceType: value }, { count: 2 }, { resourceType: 'host', x: 1 }]) },
      }),
      () => ({
        category: 'wrong-variable-type',
        query: 'query ($s: [LeaseStatus!]) { leases(filter: { status: $s }) { edges { cursor } } }',
        variables: { s: r.pick([['NOPE'], [null], 'PENDING ', [1], { a: 1 }]) },
      }),
      () => ({
        category: 'wrong-variable-type',
        query: 'query ($id: ID!) { lease(id: $id) { id } }',
        variables: r.pick([{}, { id: null }, { id: value }]),
      }),
      () => ({
        category: 'wrong-variable-type',
        query: `query ($x: ${r.pick(['Nope', 'Lease', 'Int!!', '[[ID]', 'RequestLeaseInput'])}) { viewer { name } }`,
        variables: { x: value },
      }),
    ])();
  },
  'unknown-field-or-arg': (r) =>
    r.pick<() => BadOperation>([
      () => ({ category: 'unknown-field-or-arg', query: `{ ${r.word()} }` }),
      () => ({ category: 'unknown-field-or-arg', query: `{ viewer { ${r.word()} } }` }),
      () => ({ category: 'unknown-field-or-arg', query: `{ viewer(${r.word()}: 1) { name } }` }),
      () => ({
        category: 'unknown-field-or-arg',
        query: `mutation { releaseLease(id: "x", ${r.word()}: true) { __typename } }`,
      }),
      () => ({
        category: 'unknown-field-or-arg',
        query: `mutation { requestLease(input: { resourceType: "host", ${r.word()}: 1 }) { __typename } }`,
      }),
      () => ({ category: 'unknown-field-or-arg', query: `{ ... on ${r.word()} { id } }` }),
      () => ({ category: 'unknown-field-or-arg', query: `mutation { ${r.word()}(input: {}) { id } }` }),
      () => ({ category: 'unknown-field-or-arg', query: `subscription { ${r.word()} }` }),
      () => ({ category: 'unknown-field-or-arg', query: '{ viewer { name } }', operationName: r.word() }),
      () => ({ category: 'unknown-field-or-arg', query: 'query A { viewer { name } } query B { viewer { id } }' }),
    ])(),
  'invalid-global-id': (r) => {
    const id = invalidGlobalId(r);
    return r.pick<() => BadOperation>([
      () => ({ category: 'invalid-global-id', query: 'query ($id: ID!) { node(id: $id) { id } }', variables: { id } }),
      () => ({
        category: 'invalid-global-id',
        query: 'query ($id: ID!) { lease(id: $id) { id status } }',
        variables: { id: r.chance(0.3) ? oddButReadableId(r) : id },
      }),
      () => ({
        category: 'invalid-global-id',
        query: 'query ($ids: [ID!]!) { nodes(ids: $ids) { id } }',
        variables: { ids: [id, invalidGlobalId(r), oddButReadableId(r)] },
      }),
      () => ({
        category: 'invalid-global-id',
        query: 'mutation ($id: ID!) { releaseLease(id: $id) { __typename ... on Error { message } } }',
        variables: { id },
      }),
      () => ({
        category: 'invalid-global-id',
        query: 'mutation ($id: ID!) { releaseResource(id: $id) { __typename ... on Error { message } } }',
        variables: { id: id === b64('Resource:1') ? b64('Lease:1') : id },
      }),
      () => ({
        category: 'invalid-global-id',
        query: `mutation ($id: ID!) { setBlueprintDisabled(id: $id, disabled: true) { __typename ... on Error { message } } }`,
        variables: { id: id === b64('Blueprint:1') ? b64('Lease:1') : id },
      }),
      () => ({
        category: 'invalid-global-id',
        query: 'mutation ($id: ID!) { revokeApiToken(id: $id) { __typename ... on Error { message } } }',
        variables: { id },
      }),
      () => ({
        category: 'invalid-global-id',
        query:
          'query ($id: ID!) { leases(filter: { blueprintId: $id, ownerId: $id, resourceId: $id }) { edges { cursor } } }',
        variables: { id },
      }),
      () => ({
        category: 'invalid-global-id',
        query: 'query ($c: String) { leases(after: $c, first: 5) { edges { cursor } } }',
        variables: { c: id },
      }),
    ])();
  },
  'alias-bomb': (r) => {
    const n = r.int(31, 2_000);
    return r.pick<() => BadOperation>([
      () => ({
        category: 'alias-bomb',
        query: `{ ${Array.from({ length: n }, (_, i) => `a${i}: viewer { name }`).join(' ')} }`,
      }),
      () => ({
        category: 'alias-bomb',
        query: `{ ${Array.from({ length: n }, (_, i) => `a${i}: leases(first: 100) { edges { node { id logs { data } } } }`).join(' ')} }`,
      }),
      () => {
        // Each fragment spreads the previous one twice: 2^k fields from a few hundred bytes.
        const k = r.int(10, 40);
        const frags = Array.from(
          { length: k },
          (_, i) => `fragment F${i + 1} on Query { ...F${i} ...F${i} x${i}: viewer { name } }`,
        );
        return {
          category: 'alias-bomb',
          query: `{ ...F${k} } fragment F0 on Query { viewer { name } } ${frags.join(' ')}`,
        };
      },
      () => ({
        category: 'alias-bomb',
        query: '{ ...A } fragment A on Query { ...B } fragment B on Query { ...A }',
      }),
    ])();
  },
  'directive-spam': (r) => {
    const n = r.int(31, 1_500);
    const directive = () =>
      r.pick(['@include(if: true)', '@skip(if: false)', `@${r.word()}`, '@deprecated', '@include(if: "yes")']);
    return {
      category: 'directive-spam',
      query: `{ viewer ${Array.from({ length: n }, directive).join(' ')} { name } }`,
    };
  },
  'long-string': (r) => {
    const long = r.word(1, 1).repeat(r.int(10_000, 200_000));
    return r.pick<() => BadOperation>([
      () => ({
        category: 'long-string',
        query: 'query ($t: String!) { leaseCandidates(input: { resourceType: $t }) { __typename } }',
        variables: { t: long },
      }),
      () => ({ category: 'long-string', query: 'query ($id: ID!) { lease(id: $id) { id } }', variables: { id: long } }),
      () => ({ category: 'long-string', query: `{ ${long} }` }),
      () => ({ category: 'long-string', query: `{ viewer { name } }`, operationName: long }),
      () => ({ category: 'long-string', query: `{ lease(id: "${long}") { id } }` }),
      () => ({
        category: 'long-string',
        query: 'mutation ($id: ID!) { releaseLease(id: $id) { __typename } }',
        variables: { id: b64(`Lease:${long}`) },
      }),
    ])();
  },
  'number-out-of-range': (r) => {
    const big = r.pick(['2147483648', '-2147483649', '1e100', '99999999999999999999999', '1.5', '-0.0001', 'NaN']);
    const domain = r.pick(['0', '-1', '101', '-2147483648', '2147483647']);
    return r.pick<() => BadOperation>([
      () => ({ category: 'number-out-of-range', query: `{ leases(first: ${big}) { edges { cursor } } }` }),
      () => ({ category: 'number-out-of-range', query: `{ leases(first: ${domain}) { edges { cursor } } }` }),
      () => ({
        category: 'number-out-of-range',
        query: `{ leases(last: ${domain}, first: ${domain}) { edges { cursor } } }`,
      }),
      () => ({
        category: 'number-out-of-range',
        query: `mutation { requestLease(input: { resourceType: "host", count: ${r.pick([big, domain === '2147483647' ? '0' : domain])} }) { __typename ... on Error { message } } }`,
      }),
      () => ({
        category: 'number-out-of-range',
        query: `mutation { requestLease(input: { resourceType: "host", ttlSeconds: ${r.pick([big, '0', '-1', '-2147483648'])} }) { __typename ... on Error { message } } }`,
      }),
      () => ({
        category: 'number-out-of-range',
        query: `mutation { requestLease(input: { resourceType: "host", until: "${r.pick(['1970-01-01T00:00:00Z', 'yesterday', '2026-13-45T99:99:99Z', '', '0', '+275760-09-13T00:00:00.001Z'])}" }) { __typename ... on Error { message } } }`,
      }),
      () => ({
        category: 'number-out-of-range',
        query: 'query ($n: Int) { leases(first: $n) { edges { cursor } } }',
        variables: { n: r.pick([2 ** 31, -(2 ** 53), 1e308, 0.5, Number.MAX_SAFE_INTEGER]) },
      }),
    ])();
  },
};

export const operationCategories = Object.keys(generators);

export function badOperation(r: Prng, category = r.pick(operationCategories)): BadOperation {
  return generators[category]!(r);
}
