import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Browser, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { serve, type App } from '../../src/app.js';
import { loadConfig } from '../../src/config.js';
import { createLogger } from '../../src/logger.js';
import { createTestDatabase, type TestDatabase } from '../support/database.js';
import { principalWithToken } from '../support/tokens.js';
import { launchChromium } from './browser.js';

// A server on 127.0.0.1 acts as the local admin for requests without a token. A page from another
// origin, opened in the operator's browser, can send requests there too: in real Chromium, none of
// the ways a page has (a form post, a fetch without CORS, a fetch with it, a WebSocket) may act
// as the local admin, while a page of another origin with a token of its own still works.

const quiet = createLogger('error', () => {});
const CREATE_TOKEN = 'mutation { createApiToken(input: { name: "planted", isAdmin: true }) { __typename } }';

describe('pages of another origin in Chromium', () => {
  let db: TestDatabase;
  let app: App;
  let elsewhere: Server;
  let elsewhereUrl = '';
  let browser: Browser;
  let page: Page;

  beforeAll(async () => {
    db = await createTestDatabase('pglite');
    app = await serve(db, { ...loadConfig({}), port: 0, shutdownTimeoutMs: 2_000 }, quiet);
    // Another origin: the same address, another port (same-site to the browser, not same-origin).
    elsewhere = createServer((_req, res) => {
      res.writeHead(200, { 'content-type': 'text/html' });
      res.end('<!doctype html><title>elsewhere</title><iframe name="sink"></iframe>');
    });
    await new Promise<void>((resolve) => elsewhere.listen(0, '127.0.0.1', resolve));
    elsewhereUrl = `http://127.0.0.1:${(elsewhere.address() as AddressInfo).port}`;
    browser = await launchChromium();
    page = await browser.newPage();
    await page.goto(`${elsewhereUrl}/`);
  });
  afterAll(async () => {
    await browser?.close();
    await new Promise((resolve) => elsewhere?.close(resolve));
    await app?.close();
    await db?.dispose();
  });

  it('a form post, fetches with and without CORS and a WebSocket act as nobody', async () => {
    const tokensBefore = await db.prisma.apiToken.count();
    // A form posted into a frame: the browser sends it without asking, as a simple request.
    const posted = page.waitForEvent('requestfinished', (request) => request.url().startsWith(app.graphqlUrl));
    await page.evaluate(
      ({ url, query }) => {
        const form = document.createElement('form');
        form.method = 'POST';
        form.action = url;
        form.target = 'sink';
        const field = document.createElement('input');
        field.name = 'query';
        field.value = query;
        form.append(field);
        document.body.append(form);
        form.submit();
      },
      { url: app.graphqlUrl, query: CREATE_TOKEN },
    );
    expect((await (await posted).response())?.status()).toBe(403);

    const answers = await page.evaluate(
      async ({ url, query }) => {
        // No CORS: the page cannot read the answer, but the request is sent and would act.
        const blind = await fetch(url, {
          method: 'POST',
          mode: 'no-cors',
          headers: { 'content-type': 'text/plain' },
          body: JSON.stringify({ query }),
        }).then(
          (response) => response.type,
          (error: Error) => `failed: ${error.message}`,
        );
        // With CORS: the preflight is not answered for this origin, so the request never goes.
        const read = await fetch(url, {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify({ query: '{ viewer { name isAdmin } }' }),
        }).then(
          (response) => response.text(),
          (error: Error) => `failed: ${error.message}`,
        );
        // WebSockets are not covered by CORS at all.
        const socket = await new Promise<{ code: number; messages: string[] }>((resolve) => {
          const messages: string[] = [];
          const ws = new WebSocket(url.replace(/^http/, 'ws'), 'graphql-transport-ws');
          ws.onopen = () => ws.send(JSON.stringify({ type: 'connection_init' }));
          ws.onmessage = (event) => {
            messages.push(String(event.data));
            const message = JSON.parse(String(event.data)) as { type: string };
            if (message.type === 'connection_ack')
              ws.send(JSON.stringify({ id: '1', type: 'subscribe', payload: { query } }));
          };
          ws.onclose = (event) => resolve({ code: event.code, messages });
        });
        return { blind, read, socket };
      },
      { url: app.graphqlUrl, query: CREATE_TOKEN },
    );
    expect(answers.blind).toBe('opaque');
    expect(answers.read).toMatch(/^failed/);
    expect(answers.socket).toEqual({ code: 4403, messages: [] });
    expect(await db.prisma.apiToken.count()).toBe(tokensBefore);
  });

  it('the same page with a token of its own acts as that principal over a WebSocket', async () => {
    const { token } = await principalWithToken(db, 'dashboard');
    const viewer = await page.evaluate(
      async ({ url, token }) =>
        new Promise<unknown>((resolve) => {
          const ws = new WebSocket(url.replace(/^http/, 'ws'), 'graphql-transport-ws');
          ws.onopen = () =>
            ws.send(JSON.stringify({ type: 'connection_init', payload: { authorization: `Bearer ${token}` } }));
          ws.onmessage = (event) => {
            const message = JSON.parse(String(event.data)) as { type: string; payload?: unknown };
            if (message.type === 'connection_ack')
              ws.send(JSON.stringify({ id: '1', type: 'subscribe', payload: { query: '{ viewer { name } }' } }));
            if (message.type === 'next') {
              resolve(message.payload);
              ws.close();
            }
          };
          ws.onclose = (event) => resolve(`closed ${event.code}`);
        }),
      { url: app.graphqlUrl, token },
    );
    expect(viewer).toEqual({ data: { viewer: { name: 'dashboard' } } });
  });
});
