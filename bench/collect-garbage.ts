import type { ChildProcess } from 'node:child_process';
import WebSocket from 'ws';

/**
 * A full garbage collection in a server process, through Node's inspector: SIGUSR1 opens it (on
 * the port --inspect-port gave, 0: any free one) and its listening line on stderr names the
 * address; HeapProfiler.collectGarbage runs the collection. A memory reading taken right after
 * counts what the process holds, not what it has yet to collect: read between collections, the
 * resident size of a server connecting thousands of sockets moved by more than they added.
 * No inspector is open until the first call, so the rows timed before it run as `npm start` does.
 */
export function garbageCollector(child: ChildProcess, output: () => string): () => Promise<void> {
  let address: Promise<string> | null = null;
  const open = () =>
    new Promise<string>((resolve, reject) => {
      const found = () => /Debugger listening on (ws:\/\/\S+)/.exec(output())?.[1];
      const timer = setTimeout(() => reject(new Error('the server did not open its inspector')), 10_000);
      const look = () => {
        const url = found();
        if (!url) return;
        clearTimeout(timer);
        child.stderr?.off('data', look);
        resolve(url);
      };
      child.stderr?.on('data', look);
      child.kill('SIGUSR1');
      look();
    });
  return async () => {
    address ??= open();
    const socket = new WebSocket(await address);
    try {
      await new Promise((resolve, reject) => socket.once('open', resolve).once('error', reject));
      await new Promise<void>((resolve, reject) => {
        socket.once('message', () => resolve());
        socket.once('error', reject);
        socket.send(JSON.stringify({ id: 1, method: 'HeapProfiler.collectGarbage' }));
      });
    } finally {
      socket.close();
    }
  };
}
