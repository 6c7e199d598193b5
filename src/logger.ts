import { createRequire } from 'node:module';
import { pino, type DestinationStream, type Logger as PinoLogger } from 'pino';
import type PinoPretty from 'pino-pretty';

export type LogLevel = 'debug' | 'info' | 'warn' | 'error';
export type LogFormat = 'json' | 'pretty';

export interface Logger {
  debug(...args: unknown[]): void;
  info(...args: unknown[]): void;
  warn(...args: unknown[]): void;
  error(...args: unknown[]): void;
  /**
   * One structured entry: `fields` become properties of the JSON object; pretty, the entry is a
   * heading line (time, level, message) and then one indented `key: value` line per field.
   */
  line(level: LogLevel, message: string, fields: Record<string, unknown>): void;
}

export interface LoggerOptions {
  /** Each finished line; stderr by default, so stdout stays free for what a wrapping tool prints. */
  write?: (line: string) => void;
  /** json unless said otherwise: the pretty format is for a person at a terminal. */
  format?: LogFormat;
}

/**
 * Field names whose values never reach a log line, wherever they are nested: a caller that logs an
 * object carrying a token or a password by mistake still leaks nothing.
 */
const REDACTED = [
  'authorization',
  'token',
  'password',
  'secret',
  'privateKey',
  'variables',
  'connectionParams',
  'databaseUrl',
  'redisUrl',
].flatMap((key) => [key, `*.${key}`]);

function destination(options: LoggerOptions): DestinationStream {
  const write = options.write;
  if (options.format === 'pretty') {
    // Required only here (it is CommonJS): JSON, the usual format, does not pay for loading it.
    const pretty = createRequire(import.meta.url)('pino-pretty') as typeof PinoPretty;
    const prettyOptions = {
      colorize: !write && process.stderr.isTTY,
      translateTime: 'SYS:HH:MM:ss.l',
      ignore: 'pid,hostname',
    };
    // To a caller's function: each JSON line made readable here, in this thread (pino-pretty's
    // stream wants a real stream as its destination, which a function is not).
    if (write) {
      const prettify = pretty.prettyFactory(prettyOptions);
      return { write: (line: string) => write(prettify(line).replace(/\n$/, '')) };
    }
    // Synchronous, in this thread: a worker-thread transport would lose the last lines on exit.
    return pretty({ ...prettyOptions, sync: true, destination: 2 });
  }
  return write
    ? { write: (line: string) => write(line.replace(/\n$/, '')) }
    : pino.destination({ dest: 2, sync: true });
}

/** The text of a line from free-form arguments; the first Error among them becomes `err`. */
function split(args: unknown[]): { message: string; err: Error | undefined } {
  const err = args.find((arg): arg is Error => arg instanceof Error);
  const message = args
    .filter((arg) => arg !== err)
    .map((arg) => (typeof arg === 'string' ? arg : JSON.stringify(arg)))
    .join(' ');
  return { message: message || (err?.message ?? ''), err };
}

/** pino underneath: JSON lines a collector can parse, or the same lines made readable. */
export function createLogger(level: LogLevel, options: LoggerOptions | ((line: string) => void) = {}): Logger {
  const resolved = typeof options === 'function' ? { write: options } : options;
  const base: PinoLogger = pino(
    {
      level,
      base: { pid: process.pid },
      redact: { paths: REDACTED, censor: '[redacted]' },
      formatters: { level: (label) => ({ level: label }) },
      timestamp: pino.stdTimeFunctions.isoTime,
    },
    destination(resolved),
  );
  const at =
    (lineLevel: LogLevel) =>
    (...args: unknown[]) => {
      const { message, err } = split(args);
      if (err) base[lineLevel]({ err }, message);
      else base[lineLevel](message);
    };
  return {
    debug: at('debug'),
    info: at('info'),
    warn: at('warn'),
    error: at('error'),
    line: (lineLevel, message, fields) => base[lineLevel](fields, message),
  };
}

/** Pretty at a terminal, JSON everywhere else (a file, a pipe, a log collector). */
export function defaultLogFormat(stream: { isTTY?: boolean } = process.stderr): LogFormat {
  return stream.isTTY ? 'pretty' : 'json';
}
