import type { Logger } from './logger.js';

/**
 * What Node and libraries print on their own, made entries of the server's log: a process
 * warning (pg's about sslmode, a deprecation) and a library's console.warn or console.error
 * (ioredis's about a password the server does not need) were raw lines, several of them for one
 * warning, among the JSON lines a log collector parses.
 *
 * Kept by hand: pino has no hook for either; it is a dozen lines, and only the server process's
 * entry point calls it (the CLI prints to a person, for whom Node's own format is fine).
 */
export function logProcessOutput(logger: Logger): void {
  // Node prints warnings through a listener it adds at start-up; without it, this is the only one.
  process.removeAllListeners('warning');
  process.on('warning', (warning) => {
    const code = (warning as Error & { code?: unknown }).code;
    logger.line('warn', `${warning.name}: ${warning.message}`, {
      warning: warning.name,
      ...(typeof code === 'string' ? { code } : {}),
    });
  });
  console.warn = (...args: unknown[]) => logger.warn(...args);
  console.error = (...args: unknown[]) => logger.error(...args);
}
