import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { serve, type App } from '../../src/app.js';
import { loadConfig } from '../../src/config.js';
import { createLogger } from '../../src/logger.js';
import { RateLimiter } from '../../src/server/rate-limiter.js';
import { createTestDatabase, type TestDatabase } from '../support/database.js';

describe('RateLimiter', () => {
  it('says how many whole seconds until the principal may send again', () => {
    let now = 0;
    const limiter = new RateLimiter(3, () => now);
    expect([limiter.tryTake(1), limiter.tryTake(1), limiter.tryTake(1)]).toEqual([0, 0, 0]);
    // Three a minute: one request's worth every 20 s.
    expect(limiter.tryTake(1)).toBe(20);
    now = 1_100;
    expect(limiter.tryTake(1)).toBe(19);
    now = 19_500;
    expect(limiter.tryTake(1)).toBe(1);
    now = 20_000;
    expect(limiter.tryTake(1)).toBe(0);
    expect(limiter.tryTake(2)).toBe(0);
  });
});

describe('a rate-limited request', () => {
  let db: TestDatabase;
  let app: App;
  beforeAll(async () => {
    db = await createTestDatabase('pglite');
    app = await serve(
      db,
      { ...loadConfig({}), port: 0, shutdownTimeoutMs: 1_000, rateLimitPerMinute: 3 },
      createLogger('error', () => {}),
    );
  });
  afterAll(async () => {
    await app?.close();
    await db.dispose();
  });

  it('is told to retry when its bucket holds a request again, not after 1 s', async () => {
    const send = async () => {
      const response = await fetch(app.graphqlUrl, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ query: '{ leases { edges { node { id } } } }' }),
      });
      const body = (await response.json()) as { errors?: { extensions?: Record<string, unknown> }[] };
      return { status: response.status, retryAfter: response.headers.get('retry-after'), body };
    };
    for (let i = 0; i < 3; i++) expect((await send()).status).toBe(200);
    const refused = await send();
    expect(refused.status).toBe(429);
    const seconds = Number(refused.retryAfter);
    expect(seconds).toBeGreaterThanOrEqual(15);
    expect(seconds).toBeLessThanOrEqual(20);
    expect(refused.body.errors?.[0]?.extensions).toMatchObject({ code: 'RATE_LIMITED', retryAfterSeconds: seconds });
  });
});
