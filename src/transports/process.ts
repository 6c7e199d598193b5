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

/**
 * A command must not outlive the server that started it: once the server is gone nobody reads its
 * output or waits for its end, and a restarted server redoing the work (a clone into the same
 * directory) would race it. A server stopped with SIGTERM aborts its commands itself, but SIGKILL
 * (or the OOM killer) cannot be caught, and the command, in a session of its own so that its
 * whole group can be killed, would run on under init.
 *
 * Linux's PR_SET_PDEATHSIG would do this, but Node cannot set it without a native addon. What the
 * kernel does on every death, however it happens, is close the dead process's file descriptors.
 * So next to each command runs a small shell, in a session of its own, blocked reading a pipe from
 * the server: a line on it (the command ended, or was killed and its grace period is over) lets
 * it exit quietly; end-of-file without one means the server died, and it kills the command's
 * process group as a timeout does, SIGTERM and then SIGKILL. Unlike a wrapper that execs the
 * command, it leaves the command's own process tree, exit status and spawn errors as they are, and
 * unlike a helper polling its parent pid, it reacts at once and costs nothing while it waits.
 */
const GROUP_WATCHER = [
  'if read -r _; then exit 0; fi',
  'kill -s TERM -- "-$1" 2>/dev/null',
  `sleep ${KILL_GRACE_MS / 1000}`,
  'kill -s KILL -- "-$1" 2>/dev/null',
].join('\n');

/** Watches process group `pgid` (see GROUP_WATCHER); the returned function lets the watcher go. */
function watchGroup(pgid: number): () => void {
  const watcher = spawn('/bin/sh', ['-c', GROUP_WATCHER, 'drydock-group-watcher', String(pgid)], {
    env: { PATH: process.env['PATH'] ?? '/usr/bin:/bin' },
    stdio: ['pipe', 'ignore', 'ignore'],
    detached: true,
  });
  // Without a watcher (no /bin/sh, or someone killed it) the command still runs; only a kill -9 of
  // the server would then leave it running, as it did before there were watchers.
  watcher.on('error', () => {});
  watcher.stdin.on('error', () => {});
  watcher.unref();
  let released = false;
  return () => {
    if (released) return;
    released = true;
    watcher.stdin.end('done\n');
  };
}

/** The exit code a shell gives when it cannot start a program, so callers see the usual numbers. */
function spawnFailureCode(error: NodeJS.ErrnoException): number {
  return error.code === 'ENOENT' ? 127 : 126;
}

/**
 * Runs a program on this machine in a process group of its own, so that a timeout, an abort or the
 * server's death (GROUP_WATCHER) kills everything it started, not just the first process.
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
    const releaseWatcher = child.pid === undefined ? () => {} : watchGroup(child.pid);
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
      setTimeout(() => {
        killGroup('SIGKILL');
        releaseWatcher();
      }, KILL_GRACE_MS).unref();
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
      // A killed group is the SIGKILL's to release: a child ignoring SIGTERM may still be there.
      if (!killed) releaseWatcher();
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
