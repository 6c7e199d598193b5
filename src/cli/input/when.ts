import { RANGES } from '../args.js';
import { UsageError } from '../errors.js';

const UNITS: Record<string, number> = { s: 1, m: 60, h: 3600, d: 86_400 };

export type When = { ttlSeconds: number } | { until: string };

/**
 * `--until` takes a duration from now ("90s", "30m", "2h", "1d", "1h30m") or an ISO-8601 time.
 * Durations go to the server as ttlSeconds, so a skewed client clock does not shorten the lease.
 */
export function parseWhen(flag: string, value: string): When {
  const { min, max } = RANGES.durationSeconds;
  const refused = () =>
    new UsageError(
      `${flag} must be a duration from ${min}s to ${max / 86_400}d (such as 30m, 2h or 1h30m) or a time such as 2026-12-01T18:00:00Z, not "${value}"`,
    );
  const trimmed = value.trim().replace(/^\+/, '');
  const parts = [...trimmed.matchAll(/(\d+)\s*([smhd])/gi)];
  if (parts.length > 0 && parts.map((p) => p[0]).join('') === trimmed.replace(/\s+/g, '')) {
    const seconds = parts.reduce((sum, p) => sum + Number(p[1]) * UNITS[p[2]!.toLowerCase()]!, 0);
    if (seconds < min || seconds > max) throw refused();
    return { ttlSeconds: seconds };
  }
  const time = Date.parse(trimmed);
  if (/^\d{4}-\d{2}-\d{2}/.test(trimmed) && !Number.isNaN(time)) {
    if (time <= Date.now()) throw new UsageError(`${flag} must be in the future, not "${value}"`);
    return { until: new Date(time).toISOString() };
  }
  throw refused();
}
