import { mkdtemp, rm } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { graphqlRequest } from '../support/http.js';
import { startServerProcess, type ServerProcess } from '../support/process.js';

/** A stand-in OTLP/HTTP collector: keeps every export request's path and body. */
async function startCollector() {
  const received: { path: string; body: Buffer }[] = [];
  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => {
      received.push({ path: req.url ?? '', body: Buffer.concat(chunks) });
      res.writeHead(200, { 'content-type': req.headers['content-type'] ?? 'application/x-protobuf' });
      res.end();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    received,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}

describe('tracing with an OTLP endpoint configured', () => {
  let collector: Awaited<ReturnType<typeof startCollector>>;
  let server: ServerProcess | undefined;
  let dataDir: string | undefined;
  afterAll(async () => {
    await server?.stop('SIGTERM');
    await collector?.close();
    if (dataDir) await rm(dataDir, { recursive: true, force: true });
  });

  it('exports a span per operation, named after it, to the collector', async () => {
    collector = await startCollector();
    dataDir = await mkdtemp(join(tmpdir(), 'drydock-tracing-'));
    server = await startServerProcess(
      {
        DATA_DIR: dataDir,
        OTEL_EXPORTER_OTLP_ENDPOINT: collector.url,
        OTEL_SERVICE_NAME: 'drydock-under-test',
        // The batch processor's default wait is 5 s; the test need not sit through it.
        OTEL_BSP_SCHEDULE_DELAY: '100',
        // PGlite's WASM start-up alone can take tens of seconds with both cores busy.
      },
      90_000,
    );
    const { body } = await graphqlRequest(
      `${server.url}/graphql`,
      'query TracedLeases { leases { edges { node { id } } } }',
    );
    expect(body.errors).toBeUndefined();

    // Protobuf keeps strings as they are: the span's operation name and the service can be found in the bytes.
    await expect
      .poll(
        () =>
          collector.received.some(
            (request) =>
              request.path === '/v1/traces' &&
              request.body.includes('TracedLeases') &&
              request.body.includes('drydock-under-test'),
          ),
        { timeout: 30_000 },
      )
      .toBe(true);
    // Traces only: metrics and logs are not sent to the collector.
    expect(collector.received.filter((request) => request.path !== '/v1/traces')).toEqual([]);
  }, 180_000);
});
