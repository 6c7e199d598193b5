import { mkdtemp, rm } from 'node:fs/promises';
import { connect, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startServerProcess, type ServerProcess } from '../support/process.js';
import { waitFor } from '../support/wait.js';

// More than Node's default backlog (511), fewer than the open-file limit a test process may have.
const CONNECTIONS = 800;

/** Resolves with the whole answer once the server closes the connection. */
function answer(socket: Socket): Promise<string> {
  return new Promise((resolve, reject) => {
    let text = '';
    socket.setEncoding('utf8');
    socket.on('data', (chunk: string) => (text += chunk));
    socket.once('end', () => resolve(text));
    socket.once('error', reject);
  });
}

describe('a burst of new connections while the process cannot accept them', () => {
  let dataDir: string;
  let server: ServerProcess;
  beforeAll(async () => {
    dataDir = await mkdtemp(join(tmpdir(), 'drydock-backlog-'));
    server = await startServerProcess({ DATA_DIR: dataDir });
  });
  afterAll(async () => {
    server?.child.kill('SIGCONT');
    await server?.stop();
    await rm(dataDir, { recursive: true, force: true });
  });

  it('is held by the kernel until the process accepts it, and every connection is answered', async () => {
    const { hostname, port } = new URL(server.url);
    // A stopped process accepts nothing, as a process whose event loop is busy accepts little:
    // what connects now is what the listening socket's queue holds.
    server.child.kill('SIGSTOP');
    const sockets: Socket[] = [];
    let connected = 0;
    try {
      for (let i = 0; i < CONNECTIONS; i++) {
        const socket = connect(Number(port), hostname, () => connected++);
        socket.on('error', () => {});
        sockets.push(socket);
      }
      // With Node's default backlog this stops at 512: the rest of the SYNs are dropped, and
      // their retries too, for as long as the queue stays full.
      await waitFor(() => connected === CONNECTIONS, 15_000);
    } finally {
      server.child.kill('SIGCONT');
    }
    const answers = sockets.map((socket) => {
      const answered = answer(socket);
      socket.write('GET /healthz HTTP/1.1\r\nHost: drydock\r\nConnection: close\r\n\r\n');
      return answered;
    });
    const texts = await Promise.all(answers);
    expect(texts.filter((text) => text.startsWith('HTTP/1.1 200')).length).toBe(CONNECTIONS);
  });
});
