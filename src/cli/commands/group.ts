import { ExitCode, UsageError } from '../errors.js';
import type { Command } from './command.js';

/** A command with subcommands (`drydock blueprint list`), each a full command with its own --help. */
export function defineGroup(name: string, summary: string, subcommands: Command[]): Command {
  const width = Math.max(...subcommands.map((c) => c.name.length));
  const help = `Usage: drydock ${name} <${subcommands.map((c) => c.name).join('|')}> [flags]

${subcommands.map((c) => `  ${c.name.padEnd(width)}  ${c.summary}`).join('\n')}

Run drydock ${name} <subcommand> --help for its flags.
`;
  return {
    name,
    summary,
    help,
    flags: ['--help'],
    subcommands,
    async run(args, io) {
      const [first, ...rest] = args;
      if (first === undefined || first === '--help' || first === '-h' || first === 'help') {
        (first === undefined ? io.stderr : io.stdout).write(help);
        return first === undefined ? ExitCode.usage : ExitCode.ok;
      }
      const sub = subcommands.find((c) => c.name === first);
      if (!sub)
        throw new UsageError(
          `unknown subcommand "${name} ${first}"; expected one of: ${subcommands.map((c) => c.name).join(', ')}`,
        );
      return sub.run(rest, io);
    },
  };
}
