import { Agent, request } from 'node:http';
import { expect, it } from 'vitest';
import { serve } from '../../src/app.js';
import { loadConfig } from '../../src/config.js';
import { createLogger } from '../../src/logger.js';
import { createTestDatabase } from '../support/database.js';
import { waitFor } from '../support/wait.js';

// A keep-alive connection with a request in flight when the server is told to stop goes idle when
// its response ends; left open, it held the close up until SHUTDOWN_TIMEOUT_MS.

it('a keep-alive connection busy at shutdown is closed when its response ends, not at the timeout', async () => {
  const db = await createTestDatabase('pglite');
  const app = await serve(
    db,
    { ...loadConfig({}), port: 0, shutdownTimeoutMs: 30_000 },
    createLogger('error', () => {}),
  );
  const agent = new Agent({ keepAlive: true, maxSockets: 1 });
  try {
    const body = JSON.stringify({ query: '{ viewer { name } }' });
    let answered: (value: { status: number; text: string }) => void = () => {};
    const answer = new Promise<{ status: number; text: string }>((resolve) => (answered = resolve));
    const req = request(
      app.graphqlUrl,
      { method: 'POST', agent, headers: { 'content-type': 'application/json', 'content-length': String(body.length) } },
      (res) => {
        let text = '';
        res.on('data', (chunk: Buffer) => (text += chunk.toString()));
        res.on('end', () => answered({ status: res.statusCode ?? 0, text }));
      },
    );
    // Half the body: the request is in flight, its connection busy, once the server has admitted it.
    req.write(body.slice(0, 10));
    await waitFor(async () => /^drydock_requests_in_flight 1$/m.test(await (await fetch(`${app.url}/metrics`)).text()));
    const started = Date.now();
    const closed = app.close();
    req.end(body.slice(10));
    expect(await answer).toEqual({
      status: 200,
      text: '{"data":{"viewer":{"name":"local-admin"}}}',
    });
    await closed;
    expect(Date.now() - started).toBeLessThan(10_000);
  } finally {
    agent.destroy();
    await db.dispose();
  }
});
