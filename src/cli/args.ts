import { parseArgs, type ParseArgsConfig } from 'node:util';
import { UsageError } from './errors.js';

type Options = NonNullable<ParseArgsConfig['options']>;

/** Flags every command understands. */
export const commonOptions = {
  server: { type: 'string' },
  token: { type: 'string' },
  json: { type: 'boolean' },
  help: { type: 'boolean', short: 'h' },
} as const satisfies Options;

export interface GlobalSettings {
  server: string;
  token: string | undefined;
  json: boolean;
}

export const DEFAULT_SERVER = 'http://127.0.0.1:4000';

/**
 * Parses a command's arguments strictly, so a typo is an error rather than silently ignored. An
 * empty `--type` is refused for every command: dropped, it would widen a listing to every type or
 * give a new blueprint its implementation's default type without a word.
 */
export function parseCommandArgs<const O extends Options>(args: string[], options: O) {
  let parsed;
  try {
    parsed = parseArgs({ args, options: { ...commonOptions, ...options }, allowPositionals: true, strict: true });
  } catch (error) {
    throw new UsageError(parseArgsProblem(error));
  }
  const type = (parsed.values as Record<string, unknown>)['type'];
  if (typeof type === 'string' && type.trim() === '')
    throw new UsageError('--type must name a resource type (such as host), not be empty');
  return parsed;
}

/**
 * node:util's parseArgs explains its refusals for the authors of a program (how to pass a
 * positional that starts with a dash); this says them in the terms of a command line's user.
 */
function parseArgsProblem(error: unknown): string {
  const message = error instanceof Error ? error.message.replace(/^TypeError \[[A-Z_]+\]: /, '') : String(error);
  // "Option '-t, --type <value>' …" names the long form last.
  const flag = /^Option '(?:-\w, )?(-[^' ]+)/.exec(message)?.[1] ?? /^Unknown option '([^']+)'/.exec(message)?.[1];
  if (flag === undefined) return message;
  if (message.startsWith('Unknown option')) return `unknown flag ${flag}`;
  if (message.includes('argument is ambiguous'))
    return `${flag} needs a value; one that starts with "-" is written ${flag}=-VALUE`;
  if (message.includes('argument missing')) return `${flag} needs a value`;
  if (message.includes('does not take an argument')) return `${flag} takes no value`;
  return message;
}

/** The common flags that take a value. */
export const leadingValueFlags: ReadonlySet<string> = new Set(['--server', '--token']);

/**
 * The common flags a user put before the command (`drydock --server URL leases`), and the rest of
 * the line. Each command parses its own flags; these are handed to it with them.
 */
export function leadingCommonFlags(argv: string[]): { flags: string[]; rest: string[] } {
  const flags: string[] = [];
  let i = 0;
  for (; i < argv.length; i++) {
    const arg = argv[i]!;
    const name = arg.split('=', 1)[0]!;
    if (arg === '--json' || (leadingValueFlags.has(name) && arg.includes('='))) flags.push(arg);
    else if (leadingValueFlags.has(arg) && i + 1 < argv.length) flags.push(arg, argv[++i]!);
    else break;
  }
  return { flags, rest: argv.slice(i) };
}

/** Flags first, then the environment, then the default: the usual precedence for a CLI. */
export function globalSettings(
  values: {
    server?: string | boolean | undefined;
    token?: string | boolean | undefined;
    json?: string | boolean | undefined;
  },
  env: NodeJS.ProcessEnv,
): GlobalSettings {
  const server = stringValue(values.server) ?? env['DRYDOCK_URL'] ?? DEFAULT_SERVER;
  try {
    const url = new URL(server);
    if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new Error('not http');
  } catch {
    throw new UsageError(`--server must be an http(s) URL such as ${DEFAULT_SERVER}, not "${server}"`);
  }
  const token = stringValue(values.token) ?? (env['DRYDOCK_TOKEN'] || undefined);
  return { server, token, json: values.json === true };
}

function stringValue(value: string | boolean | undefined): string | undefined {
  return typeof value === 'string' ? value : undefined;
}

/** `--id 1 --id 2` and `--id 1 2` both work: ids given as flags and as positionals are merged. */
export function idArguments(flag: string[] | string | boolean | undefined, positionals: string[]): string[] {
  const fromFlag = Array.isArray(flag) ? flag : typeof flag === 'string' ? [flag] : [];
  return [...fromFlag, ...positionals];
}

/** The values a flag accepts, both ends included; no `max`: as many as there are. */
export interface Range {
  min: number;
  max?: number;
}

/**
 * What each number a command sends may be: the server's own limits, checked here first so that a
 * value out of range is a usage error naming the flag before anything is sent (the server would
 * name an API field instead, or GraphQL would refuse an Int past 32 bits in its own words).
 */
export const RANGES = {
  /** requestLease's count. */
  count: { min: 1, max: 100 },
  priority: { min: -10, max: 10 },
  /** 30 days: a longer wait is a mistake, not a plan. */
  waitTimeoutSeconds: { min: 1, max: 30 * 86_400 },
  heartbeatSeconds: { min: 1, max: 3_600 },
  commandTimeoutSeconds: { min: 1, max: 86_400 },
  /** A queue's first; listings page through any number, so theirs has no end. */
  queueLimit: { min: 1, max: 1_000 },
  listLimit: { min: 1 },
  resourceLimit: { min: 1, max: 10_000 },
  minReady: { min: 0, max: 10_000 },
  /** --until and --expires as a duration: what ttlSeconds, a GraphQL Int, carries, in whole days. */
  durationSeconds: { min: 1, max: 24_855 * 86_400 },
} as const satisfies Record<string, Range>;

export function rangeText({ min, max }: Range): string {
  return max === undefined ? `${min} or more` : `from ${min} to ${max}`;
}

/** A whole-number flag within `range`; anything else is a usage error naming the flag and the range. */
export function wholeNumber(flag: string, value: string, range: Range): number {
  const number = /^-?\d+$/.test(value) ? Number(value) : Number.NaN;
  if (!Number.isInteger(number) || number < range.min || (range.max !== undefined && number > range.max))
    throw new UsageError(`${flag} must be a whole number ${rangeText(range)}, not "${value}"`);
  return number;
}
