// Speaks the native schema engine's command-line protocol (one JSON-RPC 2.0 object per line on
// stdin/stdout) on top of the WASM engine, so that the stock `prisma generate`, `prisma migrate
// deploy` and `prisma migrate status` work where the native binary cannot be downloaded.
// scripts/prisma-schema-engine runs it; PRISMA_SCHEMA_ENGINE_BINARY points at that script.
import { readFile } from 'node:fs/promises';
import { createInterface } from 'node:readline';
import { parseArgs } from 'node:util';
import { openDatabase } from './database.js';
import { openSchemaEngine } from './schema-engine.js';

const { values, positionals } = parseArgs({
  options: { datamodels: { type: 'string', multiple: true }, datasource: { type: 'string' } },
  allowPositionals: true,
});

const datasource = values.datasource ? (JSON.parse(values.datasource) as { url?: string }) : {};
const url = datasource.url ?? process.env['DATABASE_URL'];
const isPostgres = url !== undefined && /^postgres(ql)?:\/\//.test(url);
const db = await openDatabase({
  url: isPostgres ? url : undefined,
  dataDir: url?.replace(/^file:/, '') ?? 'memory://',
});

if (positionals.join(' ') === 'cli can-connect-to-database') {
  await db.prisma.$queryRawUnsafe('SELECT 1');
  await db.close();
  process.exit(0);
}

const files = await Promise.all(
  (values.datamodels ?? []).map(async (path) => [path, await readFile(path, 'utf8')] as [string, string]),
);
const [first] = files;
const engine = await openSchemaEngine(first?.[0] ?? 'schema.prisma', first?.[1] ?? '', db.adapterFactory, (line) =>
  process.stderr.write(line + '\n'),
);

type Request = { id: number | string; method: string; params?: unknown };
const reply = (message: object) => process.stdout.write(JSON.stringify({ jsonrpc: '2.0', ...message }) + '\n');

for await (const line of createInterface({ input: process.stdin })) {
  if (line.trim() === '') continue;
  const request = JSON.parse(line) as Request;
  const method = (engine as unknown as Record<string, (params: unknown) => Promise<unknown>>)[request.method];
  if (typeof method !== 'function') {
    reply({ id: request.id, error: { code: -32601, message: `Method not found: ${request.method}` } });
    continue;
  }
  try {
    const result = await method.call(engine, request.params);
    reply({ id: request.id, result: result ?? null });
  } catch (error) {
    const message = error instanceof Error ? error.message : String(error);
    reply({
      id: request.id,
      error: { code: 4466, message, data: { is_panic: false, message, meta: null, error_code: null } },
    });
  }
}
engine.free();
await db.close();
