import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { constants } from 'node:os';
import { StringDecoder } from 'node:string_decoder';
import { OutputTail } from './output.js';
import type { CommandResult, OutputStream } from './transport.js';

export interface ProcessSpec {
  /** Program and arguments, handed to the OS as they are: no shell sees them. */
  argv: readonly string[];
  cwd?: string;
  /** The whole environment of the process (nothing is inherited). */
  env: Readonly<Record<string, string>>;
  timeoutMs?: number;
  signal?: AbortSignal;
  onOutput?(stream: OutputStream, chunk: string): void;
  /** Per stream, what the result keeps (from the end). */
  outputLimit?: number;
}

/** After SIGTERM, how long a process group gets before SIGKILL. */
const KILL_GRACE_MS = 2_000;
/**
 * After the process exits, how long to wait for its output pipes to close. A background child
 * that inherited them can hold them open for ever; the command itself is over.
 */
const PIPE_DRAIN_MS = 2_000;

/** The exit code a shell gives when it cannot start a program, so callers see the usual numbers. */
function spawnFailureCode(error: NodeJS.ErrnoException): number {
  return error.code === 'ENOENT' ? 127 : 126;
}

/**
 * Runs a program on this machine in a process group of its own, so that a timeout or an abort
 * kills everything it started, not just the first process.
 */
export function runProcess(spec: ProcessSpec): Promise<CommandResult> {
  const [program, ...args] = spec.argv;
  if (program === undefined) return Promise.reject(new Error('a command needs at least a program name'));
  const stdout = new OutputTail(spec.outputLimit);
  const stderr = new OutputTail(spec.outputLimit);
  const emit = (stream: OutputStream, text: string) => {
    if (text === '') return;
    (stream === 'stdout' ? stdout : stderr).append(text);
    spec.onOutput?.(stream, text);
  };
  const result = (exitCode: number | null, timedOut: boolean): CommandResult => ({
    exitCode,
    stdout: stdout.toString(),
    stderr: stderr.toString(),
    timedOut,
  });
  if (spec.signal?.aborted) return Promise.resolve(result(null, false));

  return new Promise((resolve) => {
    const child = spawn(program, args, {
      cwd: spec.cwd,
      env: spec.env,
      stdio: ['ignore', 'pipe', 'pipe'],
      detached: true,
    });
    let timedOut = false;
    let killed = false;
    let exitCode: number | null = null;
    let settled = false;
    const timers: NodeJS.Timeout[] = [];

    const killGroup = (signal: NodeJS.Signals) => {
      if (child.pid === undefined) return;
      try {
        process.kill(-child.pid, signal);
      } catch {
        // The group is already gone.
      }
    };
    const stop = () => {
      if (killed) return;
      killed = true;
      killGroup('SIGTERM');
      // Not cancelled when the command ends: a child that ignores SIGTERM and let go of the
      // output pipes would otherwise outlive it.
      setTimeout(() => killGroup('SIGKILL'), KILL_GRACE_MS).unref();
    };
    const onAbort = () => stop();
    spec.signal?.addEventListener('abort', onAbort, { once: true });
    if (spec.timeoutMs !== undefined) {
      timers.push(
        setTimeout(() => {
          timedOut = true;
          stop();
        }, spec.timeoutMs),
      );
    }

    const decoders = { stdout: new StringDecoder('utf8'), stderr: new StringDecoder('utf8') };
    child.stdout.on('data', (chunk: Buffer) => emit('stdout', decoders.stdout.write(chunk)));
    child.stderr.on('data', (chunk: Buffer) => emit('stderr', decoders.stderr.write(chunk)));

    const finish = () => {
      if (settled) return;
      settled = true;
      for (const timer of timers) clearTimeout(timer);
      spec.signal?.removeEventListener('abort', onAbort);
      emit('stdout', decoders.stdout.end());
      emit('stderr', decoders.stderr.end());
      resolve(result(killed ? null : exitCode, timedOut));
    };
    child.on('error', (error: NodeJS.ErrnoException) => {
      // Spawning failed (no such program, not executable, bad cwd): no process ever ran.
      if (child.pid !== undefined) return;
      const missingCwd = spec.cwd !== undefined && !existsSync(spec.cwd);
      emit(
        'stderr',
        missingCwd
          ? `cannot run ${JSON.stringify(program)}: the directory ${spec.cwd} does not exist\n`
          : `cannot run ${JSON.stringify(program)}: ${error.message}\n`,
      );
      exitCode = missingCwd ? 126 : spawnFailureCode(error);
      finish();
    });
    child.once('exit', (code, signal) => {
      exitCode = code ?? (signal ? 128 + signalNumber(signal) : null);
      timers.push(
        setTimeout(() => {
          child.stdout.destroy();
          child.stderr.destroy();
          finish();
        }, PIPE_DRAIN_MS).unref(),
      );
    });
    child.once('close', finish);
  });
}

/** Shells report death by signal N as 128 + N; callers compare exit codes, so do the same. */
function signalNumber(signal: NodeJS.Signals): number {
  return constants.signals[signal] ?? 0;
}
