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

/** Parses a command's arguments strictly, so a typo is an error rather than silently ignored. */
export function parseCommandArgs<const O extends Options>(args: string[], options: O) {
  try {
    return parseArgs({ args, options: { ...commonOptions, ...options }, allowPositionals: true, strict: true });
  } catch (error) {
    throw new UsageError(
      error instanceof Error ? error.message.replace(/^TypeError \[[A-Z_]+\]: /, '') : String(error),
    );
  }
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

export function positiveInteger(name: string, value: string | undefined, fallback: number): number {
  if (value === undefined) return fallback;
  if (!/^\d+$/.test(value) || Number(value) < 1)
    throw new UsageError(`${name} must be a positive whole number, not "${value}"`);
  return Number(value);
}

export function nonNegativeInteger(name: string, value: string): number {
  if (!/^\d+$/.test(value)) throw new UsageError(`${name} must be a whole number, 0 or more, not "${value}"`);
  return Number(value);
}
