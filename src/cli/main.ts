import { leadingCommonFlags, leadingValueFlags } from './args.js';
import { commands } from './commands/index.js';
import type { Io } from './commands/command.js';
import { CliError, ExitCode, UsageError } from './errors.js';

function overview(): string {
  const width = Math.max(...commands.map((c) => c.name.length));
  return `drydock: lease resources from a Drydock server and manage its blueprints

Usage: drydock <command> [flags]

Commands:
${commands.map((c) => `  ${c.name.padEnd(width)}  ${c.summary}`).join('\n')}

Run drydock <command> --help for a command's flags. Every command takes --server URL
(env DRYDOCK_URL, default http://127.0.0.1:4000), --token TOKEN (env DRYDOCK_TOKEN) and --json,
after its name or before it.
`;
}

/** Runs one command line and returns its exit code; errors meant for the user are printed here. */
export async function main(argv: string[], io: Io): Promise<number> {
  const { flags, rest: line } = leadingCommonFlags(argv);
  const [name, ...afterName] = line;
  if (name === undefined) {
    io.stderr.write(overview());
    return ExitCode.usage;
  }
  if (name === '--help' || name === '-h' || name === 'help') {
    const topic = afterName[0] === undefined ? undefined : commands.find((c) => c.name === afterName[0]);
    io.stdout.write(topic ? topic.help : overview());
    return ExitCode.ok;
  }
  // The help a usage error points at: a group's subcommand has its own (drydock token create --help).
  let usage = name;
  try {
    const command = commands.find((c) => c.name === name);
    if (!command && name.startsWith('-'))
      throw new CliError(
        leadingValueFlags.has(name) && afterName.length === 0
          ? `${name} needs a value, and a command after it`
          : `unknown flag ${name} before the command; run drydock --help for the commands and their flags`,
        ExitCode.usage,
      );
    // Not a UsageError: its hint would point at `drydock ${name} --help`, which does not exist.
    if (!command) throw new CliError(`unknown command "${name}"; run drydock --help for the list`, ExitCode.usage);
    // A group's flags follow its subcommand's name (`drydock blueprint list --json`).
    const at = command.subcommands?.some((c) => c.name === afterName[0]) ? 1 : 0;
    usage = [name, ...afterName.slice(0, at)].join(' ');
    return await command.run([...afterName.slice(0, at), ...flags, ...afterName.slice(at)], io);
  } catch (error) {
    if (error instanceof CliError) {
      io.stderr.write(`drydock: ${error.message}\n`);
      if (error instanceof UsageError) io.stderr.write(`(run drydock ${usage} --help for usage)\n`);
      return error.exitCode;
    }
    io.stderr.write(
      `drydock: unexpected error: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`,
    );
    return ExitCode.failed;
  }
}

/** The process wrapper: the first Ctrl-C asks the command to clean up, a second one quits at once. */
export async function run(): Promise<void> {
  const controller = new AbortController();
  const onSignal = () => {
    if (controller.signal.aborted) process.exit(ExitCode.interrupted);
    controller.abort();
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  // A reader that stops reading (`drydock leases | head -1`) closes stdout under us. Without a
  // listener Node throws that EPIPE as an uncaught error, with its stack; here it stops the command
  // as Ctrl-C does, so a follow ends and what the command holds is released, and the exit below
  // is quiet. (process.stdout is never destroyed, so it keeps no record of the error itself.)
  let stdoutError: Error | undefined;
  process.stdout.on('error', (error) => {
    stdoutError ??= error;
    controller.abort();
  });
  // With stderr gone there is nowhere to say anything; the command goes on without its notes.
  process.stderr.on('error', () => {});
  const code = await main(process.argv.slice(2), {
    stdout: process.stdout,
    stderr: process.stderr,
    stdin: process.stdin,
    env: process.env,
    interrupted: controller.signal,
  });
  // Open sockets or timers of a finished command must not keep the process alive, so it exits;
  // but process.exit() drops what a pipe has not taken yet (`drydock leases --json | jq` lost all
  // past 64 KiB), so only once both streams have handed over everything written to them.
  const [flushError] = await Promise.all([flushed(process.stdout), flushed(process.stderr)]);
  process.exit(afterStdout(code, stdoutError ?? flushError, process.stderr));
}

/**
 * The exit code once stdout failed. A reader that went away (EPIPE) took what it wanted: a command
 * that stopped for it (interrupted, as by Ctrl-C) exits 0, as `head` and `grep -q` expect of the
 * command before them, and silent, like most command-line tools (a shell's `set -o pipefail` would
 * otherwise fail on every `| head`); one that failed on its own still says so by its code. Any other
 * write error (a full disk) lost output the user asked for: a failure, said on stderr.
 */
function afterStdout(code: number, error: Error | undefined, stderr: NodeJS.WriteStream): number {
  if (!error) return code;
  const errno = (error as NodeJS.ErrnoException).code;
  if (errno === 'EPIPE') return code === ExitCode.interrupted ? ExitCode.ok : code;
  stderr.write(`drydock: cannot write to stdout (${errno ?? error.message})\n`);
  return code === ExitCode.ok ? ExitCode.failed : code;
}

/**
 * Resolves once everything written to `stream` so far is out, or with the error that stopped it
 * (a closed pipe), which its 'error' event may not have told yet.
 */
function flushed(stream: NodeJS.WriteStream): Promise<Error | undefined> {
  return new Promise((resolve) => {
    if (stream.destroyed || !stream.writable) resolve(undefined);
    else stream.write('', (error) => resolve(error ?? undefined));
  });
}
