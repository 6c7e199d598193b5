import type { AllocatorOptions } from './options.js';

/**
 * Delay before retry number `attempt` (1-based): exponential up to the cap, with "equal jitter"
 * (half fixed, half random) so that leases that lost the same race spread out but still make
 * steady progress.
 */
export function backoffDelayMs(
  attempt: number,
  options: Pick<AllocatorOptions, 'backoffBaseMs' | 'backoffCapMs' | 'random'>,
): number {
  const exponent = Math.min(Math.max(attempt - 1, 0), 30);
  const ceiling = Math.min(options.backoffCapMs, options.backoffBaseMs * 2 ** exponent);
  return Math.round(ceiling / 2 + (options.random() * ceiling) / 2);
}
