import { Agent, request } from 'node:http';
import type { HttpCase } from './http-cases.js';

export type HttpOutcome = { kind: 'response'; status: number; body: string } | { kind: 'no-response'; error: string };

/**
 * node:http rather than fetch: fetch normalises away exactly what a fuzzer wants to send (lying
 * Content-Length, odd methods with bodies, raw bytes).
 */
export function createHttpSender(graphqlUrl: string, connections: number) {
  const agent = new Agent({ keepAlive: true, maxSockets: connections });
  const base = new URL(graphqlUrl);
  const send = (c: HttpCase, timeoutMs = 20_000): Promise<HttpOutcome> =>
    new Promise((resolve) => {
      const body = c.body === undefined ? undefined : Buffer.isBuffer(c.body) ? c.body : Buffer.from(c.body);
      const headers: Record<string, string> = { ...c.headers };
      if (body && !Object.keys(headers).some((h) => h.toLowerCase() === 'content-length')) {
        headers['content-length'] = String(body.length);
      }
      let settled = false;
      const finish = (outcome: HttpOutcome) => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        resolve(outcome);
      };
      const req = request(
        {
          agent,
          host: base.hostname,
          port: base.port,
          method: c.method,
          path: `${base.pathname}${c.search !== undefined ? `?${c.search}` : ''}`,
          headers,
        },
        (res) => {
          const chunks: Buffer[] = [];
          res.on('data', (chunk: Buffer) => chunks.push(chunk));
          res.on('end', () =>
            finish({ kind: 'response', status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString('utf8') }),
          );
          res.on('error', (error) => finish({ kind: 'no-response', error: error.message }));
        },
      );
      const timer = setTimeout(() => {
        req.destroy();
        finish({ kind: 'no-response', error: `no response within ${timeoutMs} ms` });
      }, timeoutMs);
      // A server that answers 413 early closes the socket while the body is still going out.
      req.on('error', (error) => finish({ kind: 'no-response', error: error.message }));
      req.end(body);
    });
  return { send, close: () => agent.destroy() };
}

export async function healthz(baseUrl: string): Promise<number> {
  const response = await fetch(`${baseUrl}/healthz`);
  await response.arrayBuffer();
  return response.status;
}
