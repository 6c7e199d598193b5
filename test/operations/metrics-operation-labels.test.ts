import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { serve, type App } from '../../src/app.js';
import { loadConfig } from '../../src/config.js';
import { createLogger } from '../../src/logger.js';
import { createTestDatabase, type TestDatabase } from '../support/database.js';
import { sample, scrape } from '../support/prometheus.js';

// Metrics and the operation log must name an operation alike, so that an alert on one can be
// followed up in the other.
describe('the operation labels of metrics', () => {
  let db: TestDatabase;
  let app: App;
  const logged: { operation?: string; type?: string; msg?: string }[] = [];
  beforeAll(async () => {
    db = await createTestDatabase('pglite');
    app = await serve(
      db,
      { ...loadConfig({}), port: 0, shutdownTimeoutMs: 1_000, metrics: true },
      createLogger('info', (line) => logged.push(JSON.parse(line))),
    );
  });
  afterAll(async () => {
    await app?.close();
    await db.dispose();
  });

  const post = (body: object) =>
    fetch(app.graphqlUrl, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(body),
    }).then((response) => response.text());
  const operationLines = () => logged.filter((line) => line.msg === 'graphql operation');

  it('labels an operation whose text did not parse (unparsed), never "undefined"', async () => {
    await post({ query: 'query Broken { viewer { ' });
    const text = await scrape(app.url);
    const graphqlLines = text.split('\n').filter((line) => line.startsWith('graphql_'));
    expect(graphqlLines.filter((line) => line.includes('"undefined"'))).toEqual([]);
    expect(text).toMatch(
      /graphql_envelop_error_result\{[^}]*operationName="\(unparsed\)"[^}]*phase="parse"[^}]*\} 1|graphql_envelop_error_result\{[^}]*phase="parse"[^}]*operationName="\(unparsed\)"[^}]*\} 1/,
    );
  });

  it('labels an operation without a name (anonymous), as the log does', async () => {
    await post({ query: '{ viewer { name } }' });
    await expect.poll(() => operationLines().at(-1)?.operation).toBe('(anonymous)');
    const text = await scrape(app.url);
    expect(sample(text, 'graphql_envelop_request', { operationName: '(anonymous)', operationType: 'query' })).toBe(1);
    expect(
      sample(text, 'graphql_envelop_phase_execute_count', { operationName: '(anonymous)', operationType: 'query' }),
    ).toBe(1);
    expect(text).not.toContain('operationName="Anonymous"');
  });

  it('labels the operation the request chose in a document of several, not the first definition', async () => {
    const query = `fragment Me on Principal { name }
      query First { viewer { ...Me } }
      mutation Chosen { reclaimResources(resourceType: "host") { __typename } }`;
    await post({ query, operationName: 'Chosen' });
    await expect.poll(() => operationLines().at(-1)).toMatchObject({ operation: 'Chosen', type: 'mutation' });
    const text = await scrape(app.url);
    expect(sample(text, 'graphql_envelop_request', { operationName: 'Chosen', operationType: 'mutation' })).toBe(1);
    expect(
      sample(text, 'graphql_envelop_request_duration_count', { operationName: 'Chosen', operationType: 'mutation' }),
    ).toBe(1);
    expect(text).toMatch(/graphql_yoga_http_duration_count\{[^}]*operationName="Chosen"[^}]*\} 1/);
    expect(text).toMatch(
      /graphql_yoga_http_duration_count\{[^}]*operationType="mutation"[^}]*operationName="Chosen"|graphql_yoga_http_duration_count\{[^}]*operationName="Chosen"[^}]*operationType="mutation"/,
    );
  });
});
