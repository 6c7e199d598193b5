// The cost estimate the server's limit applies (src/server/query-cost.ts), without a server: what
// a page size given each way weighs, and what the command line's and the web playground's own
// operations weigh with the variables they send.
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Kind, parse, validate, type DocumentNode, type OperationDefinitionNode } from 'graphql';
import { describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config.js';
import { buildSchema } from '../../src/schema/index.js';
import { costOptions, DEFAULT_LIST_SIZE, operationCost } from '../../src/server/query-cost.js';

const schema = buildSchema();
const maxCost = loadConfig({}).maxQueryCost;
const options = costOptions(maxCost);

const operationsOf = (document: DocumentNode) =>
  document.definitions.filter((d): d is OperationDefinitionNode => d.kind === Kind.OPERATION_DEFINITION);

function cost(query: string, variables: Record<string, unknown> = {}) {
  const document = parse(query);
  expect(validate(schema, document)).toEqual([]);
  return operationCost(schema, document, operationsOf(document)[0]!, variables, options);
}

describe('the estimate', () => {
  const leases = (first: string) => `leases${first} { edges { node { id } } }`;

  it('weighs a page the same given as a literal, a variable or a variable default', () => {
    const literal = cost(`{ ${leases('(first: 50)')} }`);
    expect(literal).toEqual({ cost: 1 + 50 * (1 + 1 + 1), usesVariables: false });
    expect(cost(`query ($n: Int) { ${leases('(first: $n)')} }`, { n: 50 })).toEqual({
      ...literal,
      usesVariables: true,
    });
    expect(cost(`query ($n: Int = 50) { ${leases('(first: $n)')} }`).cost).toBe(literal.cost);
    expect(cost(`query ($n: Int = 7) { ${leases('(first: $n)')} }`, { n: 50 }).cost).toBe(literal.cost);
    expect(cost(`query ($n: Int) { ${leases('(last: $n)')} }`, { n: 50 }).cost).toBe(literal.cost);
  });

  it('weighs an omitted or null page size as the default page, and a page past the maximum as the maximum', () => {
    const page = (n: number) => cost(`{ ${leases(`(first: ${n})`)} }`).cost;
    expect(cost(`{ ${leases('')} }`).cost).toBe(page(20));
    expect(cost(`query ($n: Int) { ${leases('(first: $n)')} }`, { n: null }).cost).toBe(page(20));
    expect(cost(`query ($n: Int) { ${leases('(first: $n)')} }`).cost).toBe(page(20));
    expect(cost(`{ ${leases('(first: 100000)')} }`).cost).toBe(page(100));
    // The queue's own: 100 by default, at most 1000.
    const queue = (args: string) =>
      cost(`{ queue(resourceType: "host"${args}) { ... on Queue { entries { position } } } }`).cost;
    expect(queue('')).toBe(queue(', first: 100'));
    expect(queue(', first: 5000')).toBe(queue(', first: 1000'));
  });

  it('multiplies nested pages', () => {
    const query = `query ($n: Int) { blueprints(first: $n) { edges { node { resources(first: $n) { edges { node {
      leases(first: $n) { edges { node { logs { type data } } } } } } } } } } }`;
    expect(cost(query, { n: 100 }).cost).toBeGreaterThan(100 ** 3 * 500);
    expect(cost(query, { n: 1 }).cost).toBeLessThan(maxCost);
  });

  it('weighs a list without paging by its known bound or the default, and nodes by its ids', () => {
    expect(cost('query ($id: ID!) { lease(id: $id) { logs { type } } }').cost).toBe(1 + 500 * 2);
    expect(cost('{ viewer { tokens { name } } }').cost).toBe(1 + DEFAULT_LIST_SIZE * 2);
    expect(cost('{ nodes(ids: ["a", "b", "c"]) { id } }').cost).toBe(3 * 2);
    expect(cost('query ($ids: [ID!]!) { nodes(ids: $ids) { id } }', { ids: ['a', 'b'] }).cost).toBe(2 * 2);
    // Aliases of an unpaged list add up: thirty of these are past the limit.
    const aliases = Array.from({ length: 30 }, (_, i) => `l${i}: lease(id: "x") { logs { type data } }`).join(' ');
    expect(cost(`{ ${aliases} }`).cost).toBeGreaterThan(maxCost);
  });

  it('weighs each fragment once, however often it is spread', () => {
    // Each fragment spreads the one before twice: 2^40 viewers from a few hundred bytes.
    const k = 40;
    const fragments = Array.from({ length: k }, (_, i) => `fragment F${i + 1} on Query { ...F${i} ...F${i} }`);
    const query = `{ ...F${k} } fragment F0 on Query { viewer { name } } ${fragments.join(' ')}`;
    const started = performance.now();
    expect(cost(query).cost).toBe(2 ** k * 2);
    expect(performance.now() - started).toBeLessThan(1_000);
  });
});

describe("the clients' own operations, with the variables they send, stay under the default limit", () => {
  const root = join(import.meta.dirname, '..', '..');
  const read = (dir: string) =>
    readdirSync(join(root, dir))
      .filter((file) => file.endsWith('.graphql'))
      .map((file) => readFileSync(join(root, dir, file), 'utf8'))
      .join('\n');
  // The command line pages by 100 (src/cli/client/pages.ts); its queue asks for 100 by default.
  const sent = { first: 100 };

  it.each([
    ['the command line', 'src/cli/operations'],
    ['the web playground', 'web-playground/src/operations'],
  ])('%s', (_name, dir) => {
    const document = parse(read(dir));
    expect(validate(schema, document)).toEqual([]);
    const costs = Object.fromEntries(
      operationsOf(document).map((operation): [string, number] => [
        operation.name?.value ?? '(anonymous)',
        operationCost(schema, document, operation, sent, options).cost,
      ]),
    );
    expect(Object.keys(costs).length).toBeGreaterThan(5);
    expect(Object.entries(costs).filter(([, value]) => value > maxCost)).toEqual([]);
  });
});
