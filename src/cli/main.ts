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
    return await command.run([...afterName.slice(0, at), ...flags, ...afterName.slice(at)], io);
  } catch (error) {
    if (error instanceof CliError) {
      io.stderr.write(`drydock: ${error.message}\n`);
      if (error instanceof UsageError) io.stderr.write(`(run drydock ${name} --help for usage)\n`);
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
  await Promise.all([flushed(process.stdout), flushed(process.stderr)]);
  process.exit(code);
}

/** Resolves once everything written to `stream` so far is out (or the stream failed: a closed pipe). */
function flushed(stream: NodeJS.WriteStream): Promise<void> {
  return new Promise((resolve) => {
    if (stream.destroyed || !stream.writable) resolve();
    else stream.write('', () => resolve());
  });
}
