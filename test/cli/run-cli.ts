import { spawn, type ChildProcess } from 'node:child_process';
import { projectRoot } from '../../src/db/migrations-folder.js';
import { runToEnd } from '../support/process.js';
import { entryArgs } from '../support/entry-args.js';

/** The package's `drydock` bin, as package.json names it: compiled, from dist/ (entry-args.ts). */
export const binArgs = entryArgs('src', 'cli', 'bin.ts');

export interface CliRun {
  child: ChildProcess;
  stdout: () => string;
  stderr: () => string;
  /** Resolves with the exit code (or the signal's name if it died of one). */
  exited: Promise<number | string | null>;
  /** Resolves once stderr or stdout matches, or rejects if the process ends first. */
  waitFor(pattern: RegExp, timeoutMs?: number): Promise<void>;
}

export function startCli(args: string[], options: { env?: Record<string, string>; stdin?: string } = {}): CliRun {
  const child = spawn(process.execPath, [...binArgs, ...args], {
    cwd: projectRoot,
    // Only what the test says: no DRYDOCK_* from the developer's shell leaks in.
    env: { PATH: process.env['PATH'] ?? '', ...options.env },
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stdout!.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
  child.stderr!.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  if (options.stdin !== undefined) child.stdin!.end(options.stdin);
  else child.stdin!.end();
  const exited = new Promise<number | string | null>((resolve) =>
    child.once('close', (code, signal) => resolve(code ?? signal)),
  );
  return {
    child,
    stdout: () => stdout,
    stderr: () => stderr,
    exited,
    waitFor(pattern, timeoutMs = 30_000) {
      return new Promise<void>((resolve, reject) => {
        const check = () => {
          if (pattern.test(stdout) || pattern.test(stderr)) {
            cleanup();
            resolve();
          }
        };
        const timer = setTimeout(() => {
          cleanup();
          reject(new Error(`no ${pattern} within ${timeoutMs} ms\nstdout:\n${stdout}\nstderr:\n${stderr}`));
        }, timeoutMs);
        const onExit = (code: number | null) => {
          cleanup();
          reject(new Error(`exited with ${code} before ${pattern}\nstdout:\n${stdout}\nstderr:\n${stderr}`));
        };
        const cleanup = () => {
          clearTimeout(timer);
          child.stdout!.off('data', check);
          child.stderr!.off('data', check);
          child.off('close', onExit);
        };
        child.stdout!.on('data', check);
        child.stderr!.on('data', check);
        child.once('close', onExit);
        check();
      });
    },
  };
}

export interface CliResult {
  code: number | string | null;
  stdout: string;
  stderr: string;
}

/** Runs the CLI to its end. */
export async function runCli(
  args: string[],
  options: { env?: Record<string, string>; stdin?: string } = {},
): Promise<CliResult> {
  const run = startCli(args, options);
  const code = await run.exited;
  return { code, stdout: run.stdout(), stderr: run.stderr() };
}

/**
 * `drydock ARGS | READER` in a shell: drydock's stderr and its own exit code (the shell's status is
 * the reader's, so drydock's is passed on a last line of stderr), and what the reader printed.
 */
export async function runCliPiped(
  args: string[],
  reader: string,
  env: Record<string, string>,
): Promise<{ stderr: string; code: number; stdout: string }> {
  const quote = (arg: string) => `'${arg.replaceAll("'", `'\\''`)}'`;
  const cli = [process.execPath, ...binArgs, ...args].map(quote).join(' ');
  const { stdout, stderr } = await runToEnd('sh', ['-c', `{ ${cli}; echo "exit=$?" >&2; } | ${reader}`], env);
  const match = /exit=(\d+)\n$/.exec(stderr);
  return { stderr: stderr.slice(0, match?.index), code: match ? Number(match[1]) : Number.NaN, stdout };
}
