import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startServerProcess, type ServerProcess } from '../support/process.js';

/**
 * Node's module hooks, handed to the server process through NODE_OPTIONS: every module it loads
 * is appended to `list`. Its ES modules cannot be listed from inside the process.
 */
function recordLoadedModules(list: string): string {
  const hook = `import { appendFileSync } from 'node:fs';
export async function load(url, context, next) {
  appendFileSync(${JSON.stringify(list)}, url + '\\n');
  return next(url, context);
}`;
  const register = `import { register } from 'node:module';
register(${JSON.stringify(`data:text/javascript,${encodeURIComponent(hook)}`)});`;
  return `--import=data:text/javascript,${encodeURIComponent(register)}`;
}

// The bundled GraphiQL page is megabytes of script that V8 compiles when its module is imported:
// every process that starts (a server, a worker, a test) would pay for a page most never serve.
describe('the GraphiQL page', () => {
  let dir: string;
  let list: string;
  let server: ServerProcess;
  const graphiqlLoaded = async () => (await readFile(list, 'utf8')).includes('@graphql-yoga/render-graphiql');

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'drydock-lazy-graphiql-'));
    list = join(dir, 'loaded-modules.txt');
    server = await startServerProcess({ DATA_DIR: join(dir, 'pglite'), NODE_OPTIONS: recordLoadedModules(list) });
  });

  afterAll(async () => {
    await server?.stop();
    await rm(dir, { recursive: true, force: true });
  });

  it('is loaded when a browser first asks for it, not when the server starts', async () => {
    const readyz = await fetch(`${server.url}/readyz`);
    expect(readyz.status).toBe(200);
    const answered = await fetch(`${server.url}/graphql`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ query: '{ __typename }' }),
    });
    expect(await answered.json()).toEqual({ data: { __typename: 'Query' } });
    // The hook saw the server's own modules: it did record what the process loaded.
    expect(await readFile(list, 'utf8')).toMatch(/dist\/server\/http\.js/);
    expect(await graphiqlLoaded()).toBe(false);

    const page = await fetch(`${server.url}/graphql`, { headers: { accept: 'text/html' } });
    expect(page.status).toBe(200);
    expect(await page.text()).toContain('<title>Drydock</title>');
    expect(await graphiqlLoaded()).toBe(true);
  });
});
