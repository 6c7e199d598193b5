export type LogLevel = 'debug' | 'info' | 'warn' | 'error';

export interface Logger {
  debug(...args: unknown[]): void;
  info(...args: unknown[]): void;
  warn(...args: unknown[]): void;
  error(...args: unknown[]): void;
}

const order: Record<LogLevel, number> = { debug: 10, info: 20, warn: 30, error: 40 };

/** Plain lines on stderr, so that stdout stays free for whatever a wrapping tool wants to print. */
export function createLogger(
  level: LogLevel,
  write: (line: string) => void = (line) => process.stderr.write(line + '\n'),
): Logger {
  const at =
    (lineLevel: LogLevel) =>
    (...args: unknown[]) => {
      if (order[lineLevel] < order[level]) return;
      const text = args
        .map((arg) =>
          arg instanceof Error ? (arg.stack ?? arg.message) : typeof arg === 'string' ? arg : JSON.stringify(arg),
        )
        .join(' ');
      write(`${new Date().toISOString()} ${lineLevel.padEnd(5)} ${text}`);
    };
  return { debug: at('debug'), info: at('info'), warn: at('warn'), error: at('error') };
}
