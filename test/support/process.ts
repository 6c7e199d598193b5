import { spawn, type ChildProcess } from 'node:child_process';
import { projectRoot } from '../../src/db/migrations-folder.js';
import { entryArgs } from './entry-args.js';

export interface ServerProcess {
  child: ChildProcess;
  url: string;
  output: () => string;
  /**
   * From the process's first line of output (its modules are loaded) to its "listening" line: the
   * start-up the server itself does, migrations included.
   */
  startUpMs: number;
  /** Sends the signal and resolves with the exit code. */
  stop(signal?: NodeJS.Signals): Promise<number | string | null>;
}

/** Runs the server the way `npm start` does, on a free port, and waits until it listens. */
export async function startServerProcess(env: Record<string, string>, timeoutMs = 60_000): Promise<ServerProcess> {
  const child = spawn(process.execPath, entryArgs('src', 'main.ts'), {
    cwd: projectRoot,
    // No warm-up unless a test asks for one: it would add seconds to every start of the suite.
    env: { PATH: process.env['PATH'] ?? '', PORT: '0', WARM_UP_LEASES: '0', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  let firstOutputAt: number | undefined;
  const collect = (chunk: Buffer) => {
    firstOutputAt ??= performance.now();
    output += chunk.toString();
  };
  child.stdout.on('data', collect);
  child.stderr.on('data', collect);
  // A death by signal shows as the signal's name, so a failed assertion says how the process ended.
  const exited = new Promise<number | string | null>((resolve) =>
    child.once('exit', (code, signal) => resolve(code ?? signal)),
  );
  const url = await new Promise<string>((resolve, reject) => {
    // A server that did not start in time is killed: left running it would load the rest of the suite.
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`server did not start within ${timeoutMs} ms:\n${output}`));
    }, timeoutMs);
    const onData = () => {
      const match = /drydock listening on (\S+)/.exec(output);
      if (match?.[1]) {
        clearTimeout(timer);
        resolve(match[1]);
      }
    };
    child.stdout.on('data', onData);
    void exited.then((code) => {
      clearTimeout(timer);
      reject(new Error(`server exited with ${code} before listening:\n${output}`));
    });
  });
  return {
    child,
    url,
    output: () => output,
    startUpMs: performance.now() - firstOutputAt!,
    stop(signal = 'SIGTERM') {
      child.kill(signal);
      return exited;
    },
  };
}

/** Runs the server with the given environment and waits for it to exit (for start-up failures). */
export function runServerToExit(env: Record<string, string>): Promise<{ code: number | null; output: string }> {
  const child = spawn(process.execPath, entryArgs('src', 'main.ts'), {
    cwd: projectRoot,
    env: { PATH: process.env['PATH'] ?? '', WARM_UP_LEASES: '0', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  child.stdout.on('data', (chunk: Buffer) => (output += chunk.toString()));
  child.stderr.on('data', (chunk: Buffer) => (output += chunk.toString()));
  return new Promise((resolve) => child.once('exit', (code) => resolve({ code, output })));
}

/**
 * Runs `command` in the project's folder with only PATH and `env` set, stdin closed, to its end:
 * its exit code and everything it wrote.
 */
export function runToEnd(
  command: string,
  args: string[],
  env: Record<string, string>,
): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const child = spawn(command, args, {
    cwd: projectRoot,
    env: { PATH: process.env['PATH'] ?? '', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
  child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  return new Promise((resolve) => child.once('close', (code) => resolve({ code, stdout, stderr })));
}
