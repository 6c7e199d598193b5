import type { Config } from './config.js';
import { redactUrl } from './db/database.js';

/**
 * What to tell an operator whose server could not start because of a setting, in one line that
 * names it; undefined for anything else (the error is then logged as it is). The system's own
 * words (EADDRINUSE, a getaddrinfo stack) do not say which variable to change.
 */
export function startFailure(
  error: unknown,
  config: Pick<Config, 'host' | 'port' | 'databaseUrl'>,
): string | undefined {
  if (!(error instanceof Error)) return undefined;
  const { code, syscall, hostname } = error as NodeJS.ErrnoException & { hostname?: string };
  const listening = syscall === 'listen' || (syscall === 'getaddrinfo' && hostname === config.host);
  if (listening) {
    if (code === 'EADDRINUSE')
      return `PORT ${config.port} is in use on HOST ${config.host} (EADDRINUSE): stop what listens there or choose another PORT`;
    if (code === 'EACCES')
      return `PORT ${config.port} on HOST ${config.host} needs privileges this process does not have: choose a PORT above 1023`;
    if (code === 'EADDRNOTAVAIL' || code === 'ENOTFOUND' || code === 'EAI_AGAIN')
      return `HOST ${config.host} is not an address of this machine (${code}): use one of its addresses, 127.0.0.1 or 0.0.0.0`;
  }
  const database = config.databaseUrl ? redactUrl(config.databaseUrl) : undefined;
  if (database && (code === 'ECONNREFUSED' || code === 'ENOTFOUND' || code === 'EAI_AGAIN' || code === 'ETIMEDOUT'))
    return `DATABASE_URL ${database} cannot be reached (${code}): check its host and port, and that PostgreSQL runs`;
  return undefined;
}
