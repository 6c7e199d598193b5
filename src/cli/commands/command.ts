import type { ParseArgsConfig } from 'node:util';
import { globalSettings, parseCommandArgs, type GlobalSettings } from '../args.js';
import type { Connection } from '../client/http.js';
import { UsageError } from '../errors.js';

type Options = NonNullable<ParseArgsConfig['options']>;

export interface Io {
  stdout: NodeJS.WriteStream;
  stderr: NodeJS.WriteStream;
  stdin: NodeJS.ReadableStream;
  env: NodeJS.ProcessEnv;
  /** Aborted on Ctrl-C or SIGTERM; long-running commands clean up and return. */
  interrupted: AbortSignal;
}

export interface Context extends GlobalSettings {
  connection: Connection;
  io: Io;
  /** A result line on stdout (what scripts read). */
  print(text: string): void;
  /** A remark on stderr (progress, hints), kept out of stdout so pipes stay clean. */
  note(text: string): void;
  printJson(value: unknown): void;
}

export interface Command {
  name: string;
  summary: string;
  /** The full --help text: usage line first, then flags and examples. */
  help: string;
  /** Its flags (--name), for shell completion. */
  flags: string[];
  /** A group's subcommands. */
  subcommands?: Command[];
  run(args: string[], io: Io): Promise<number>;
}

/** The flags every command takes (see COMMON_HELP). */
export const COMMON_FLAGS = ['--server', '--token', '--json', '--help'];

export const COMMON_HELP = `Common flags:
  --server URL   Drydock server (env DRYDOCK_URL; default http://127.0.0.1:4000)
  --token TOKEN  API token (env DRYDOCK_TOKEN; a server on 127.0.0.1 accepts none)
  --json         machine-readable output on stdout
  -h, --help     this help`;

/**
 * Declares a command: its flags are parsed strictly, --help prints its help, and the body gets
 * the parsed values with a context for talking to the server and printing.
 */
export function defineCommand<const O extends Options>(spec: {
  name: string;
  summary: string;
  help: string;
  options: O;
  /** False for a command that takes no arguments besides its flags, so a stray one is refused, not ignored. */
  positionals?: boolean;
  run(parsed: ReturnType<typeof parseCommandArgs<O>>, context: Context): Promise<number>;
}): Command {
  const help = `${spec.help.trim()}\n\n${COMMON_HELP}\n`;
  return {
    name: spec.name,
    summary: spec.summary,
    help,
    flags: [...Object.keys(spec.options).map((name) => `--${name}`), ...COMMON_FLAGS],
    async run(args, io) {
      const parsed = parseCommandArgs(args, spec.options);
      const values = parsed.values as Record<string, string | boolean | undefined>;
      if (values['help']) {
        io.stdout.write(help);
        return 0;
      }
      if (spec.positionals === false && parsed.positionals.length > 0)
        throw new UsageError(`unexpected argument "${parsed.positionals[0]}"`);
      const settings = globalSettings(values, io.env);
      const context: Context = {
        ...settings,
        connection: { server: settings.server, token: settings.token },
        io,
        print: (text) => void io.stdout.write(`${text}\n`),
        note: (text) => void io.stderr.write(`${text}\n`),
        printJson: (value) => void io.stdout.write(`${JSON.stringify(value, null, 2)}\n`),
      };
      return spec.run(parsed, context);
    },
  };
}
