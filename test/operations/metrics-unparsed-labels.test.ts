import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { serve, type App } from '../../src/app.js';
import { loadConfig } from '../../src/config.js';
import { createLogger } from '../../src/logger.js';
import { createTestDatabase, type TestDatabase } from '../support/database.js';

describe('metrics of an operation whose text did not parse', () => {
  let db: TestDatabase;
  let app: App;
  beforeAll(async () => {
    db = await createTestDatabase('pglite');
    app = await serve(
      db,
      { ...loadConfig({}), port: 0, shutdownTimeoutMs: 1_000, metrics: true },
      createLogger('error', () => {}),
    );
  });
  afterAll(async () => {
    await app?.close();
    await db.dispose();
  });

  it('labels it (unparsed), never "undefined"', async () => {
    await fetch(app.graphqlUrl, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ query: 'query Broken { viewer { ' }),
    });
    const text = await (await fetch(`${app.url}/metrics`)).text();
    const graphqlLines = text.split('\n').filter((line) => line.startsWith('graphql_'));
    expect(graphqlLines.filter((line) => line.includes('"undefined"'))).toEqual([]);
    expect(text).toMatch(
      /graphql_envelop_error_result\{[^}]*operationName="\(unparsed\)"[^}]*phase="parse"[^}]*\} 1|graphql_envelop_error_result\{[^}]*phase="parse"[^}]*operationName="\(unparsed\)"[^}]*\} 1/,
    );
  });
});
