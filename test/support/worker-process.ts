import { spawn, type ChildProcess } from 'node:child_process';
import { projectRoot } from '../../src/db/migrations-folder.js';
import { entryArgs } from './entry-args.js';

export interface WorkerProcess {
  child: ChildProcess;
  output: () => string;
  /** Resolves when the output matches (e.g. "BLOCKED"), rejects after `timeoutMs`. */
  waitFor(pattern: RegExp, timeoutMs?: number): Promise<RegExpMatchArray>;
  /** Sends the signal and resolves once the process is gone. */
  kill(signal?: NodeJS.Signals): Promise<number | string | null>;
}

/** Starts test/support/allocator-worker.ts in a process of its own, on the given database. */
export async function startWorkerProcess(
  databaseUrl: string,
  workerId: string,
  env: Record<string, string> = {},
): Promise<WorkerProcess> {
  const child = spawn(process.execPath, entryArgs('test', 'support', 'allocator-worker.ts'), {
    cwd: projectRoot,
    env: {
      PATH: process.env['PATH'] ?? '',
      WORKER_DATABASE_URL: databaseUrl,
      WORKER_ID: workerId,
      ...env,
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  const listeners = new Set<() => void>();
  const onData = (chunk: Buffer) => {
    output += chunk.toString();
    for (const listener of [...listeners]) listener();
  };
  child.stdout.on('data', onData);
  child.stderr.on('data', onData);
  const exited = new Promise<number | string | null>((resolve) =>
    child.once('exit', (code, signal) => resolve(code ?? signal)),
  );
  const waitFor = (pattern: RegExp, timeoutMs = 30_000) =>
    new Promise<RegExpMatchArray>((resolve, reject) => {
      const check = () => {
        const match = pattern.exec(output);
        if (match) {
          done();
          resolve(match);
        }
      };
      const timer = setTimeout(() => {
        done();
        reject(new Error(`worker ${workerId}: no ${pattern} within ${timeoutMs} ms:\n${output}`));
      }, timeoutMs);
      const gone = () => {
        done();
        reject(new Error(`worker ${workerId} exited before ${pattern}:\n${output}`));
      };
      const done = () => {
        clearTimeout(timer);
        listeners.delete(check);
        child.off('exit', gone);
      };
      listeners.add(check);
      child.once('exit', gone);
      check();
    });
  const worker: WorkerProcess = {
    child,
    output: () => output,
    waitFor,
    kill(signal = 'SIGTERM') {
      if (child.exitCode === null && child.signalCode === null) child.kill(signal);
      return exited;
    },
  };
  await waitFor(/READY/);
  return worker;
}
