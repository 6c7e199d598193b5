import { request } from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { serve, type App } from '../../src/app.js';
import { ConfigError, loadConfig } from '../../src/config.js';
import { createLogger } from '../../src/logger.js';
import { createTestDatabase, type TestDatabase } from '../support/database.js';
import { principalWithToken } from '../support/tokens.js';

// What a request without a token may do depends on where a browser says it comes from (see
// src/server/origin.ts); which origins may read answers is CORS_ORIGINS. Node's own client sets
// the headers a browser would, including Host, which fetch would not let a test choose.

const quiet = createLogger('error', () => {});
const DASHBOARD = 'https://dash.example.com';

type Answer = { status: number; headers: Record<string, string | string[] | undefined>; body: string };

function post(url: string, headers: Record<string, string>, body = JSON.stringify({ query: '{ viewer { name } }' })) {
  return new Promise<Answer>((resolve, reject) => {
    const req = request(url, { method: 'POST', headers: { 'content-type': 'application/json', ...headers } }, (res) => {
      let text = '';
      res.on('data', (chunk: Buffer) => (text += chunk.toString()));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: text }));
    });
    req.on('error', reject);
    req.end(body);
  });
}

/** Opens a graphql-ws socket with these upgrade headers and says how it ended, or that it was acknowledged. */
function connect(url: string, headers: Record<string, string>, payload?: Record<string, unknown>) {
  return new Promise<string>((resolve) => {
    const socket = new WebSocket(url.replace(/^http/, 'ws'), 'graphql-transport-ws', { headers });
    socket.on('open', () => socket.send(JSON.stringify({ type: 'connection_init', ...(payload ? { payload } : {}) })));
    socket.on('message', (data: Buffer) => {
      if ((JSON.parse(data.toString()) as { type: string }).type === 'connection_ack') {
        resolve('acknowledged');
        socket.close();
      }
    });
    socket.on('close', (code) => resolve(`closed ${code}`));
  });
}

describe('requests from web pages', () => {
  let db: TestDatabase;
  let app: App;
  let token = '';
  let own = '';

  beforeAll(async () => {
    db = await createTestDatabase('pglite');
    app = await serve(
      db,
      { ...loadConfig({ CORS_ORIGINS: `${DASHBOARD}, http://other.example:8080` }), port: 0 },
      quiet,
    );
    token = (await principalWithToken(db, 'dashboard')).token;
    own = new URL(app.url).host;
  });
  afterAll(async () => {
    await app?.close();
    await db?.dispose();
  });

  it('without a token, only programs and the server’s own pages act as the local admin', async () => {
    const [program, ownPage, foreignPage, crossSite, rebound] = await Promise.all([
      post(app.graphqlUrl, {}),
      post(app.graphqlUrl, { origin: `http://${own}`, 'sec-fetch-site': 'same-origin' }),
      post(app.graphqlUrl, { origin: DASHBOARD }),
      post(app.graphqlUrl, { 'sec-fetch-site': 'cross-site' }),
      // A page on a name of its own that resolves to 127.0.0.1 is same-origin with itself.
      post(app.graphqlUrl, { host: 'attacker.example:80', origin: 'http://attacker.example:80' }),
    ]);
    expect(JSON.parse(program.body)).toEqual({ data: { viewer: { name: 'local-admin' } } });
    expect(JSON.parse(ownPage.body)).toEqual({ data: { viewer: { name: 'local-admin' } } });
    for (const refused of [foreignPage, crossSite, rebound]) {
      expect(refused.status).toBe(403);
      expect(JSON.parse(refused.body)).toMatchObject({ errors: [{ extensions: { code: 'FORBIDDEN' } }] });
    }
    expect(JSON.parse(rebound.body).errors[0].message).toMatch(/by the name "attacker.example:80" need an API token/);

    expect(await connect(app.graphqlUrl, {})).toBe('acknowledged');
    expect(await connect(app.graphqlUrl, { origin: `http://${own}` })).toBe('acknowledged');
    expect(await connect(app.graphqlUrl, { origin: DASHBOARD })).toBe('closed 4403');
    expect(await connect(app.graphqlUrl, { origin: DASHBOARD }, { authorization: `Bearer ${token}` })).toBe(
      'acknowledged',
    );
  });

  it('a listed origin may read answers (CORS), any other gets no CORS headers', async () => {
    const auth = { authorization: `Bearer ${token}` };
    const [listed, unlisted, ownPage] = await Promise.all([
      post(app.graphqlUrl, { origin: DASHBOARD, ...auth }),
      post(app.graphqlUrl, { origin: 'http://evil.example', ...auth }),
      post(app.graphqlUrl, { origin: `http://${own}` }),
    ]);
    expect(listed.headers['access-control-allow-origin']).toBe(DASHBOARD);
    expect(listed.headers['access-control-allow-credentials']).toBeUndefined();
    expect(JSON.parse(listed.body)).toEqual({ data: { viewer: { name: 'dashboard' } } });
    expect(unlisted.headers['access-control-allow-origin']).toBeUndefined();
    expect(ownPage.headers['access-control-allow-origin']).toBeUndefined();
  });

  it('CORS_ORIGINS must be origins', () => {
    expect(() => loadConfig({ CORS_ORIGINS: 'https://dash.example.com/app' })).toThrow(ConfigError);
    expect(() => loadConfig({ CORS_ORIGINS: 'dash.example.com' })).toThrow(/CORS_ORIGINS must be web origins/);
    expect(loadConfig({}).corsOrigins).toEqual([]);
  });
});
