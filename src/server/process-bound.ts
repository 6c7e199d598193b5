import { AdaptiveLimit } from './adaptive-limit.js';
import { fixedBound, type ProcessBound } from './admission.js';
import { LagGate, watchLoopLag } from './loop-lag.js';

export interface ProcessBoundOptions {
  maxInFlight: number;
  /** Off: MAX_IN_FLIGHT is a fixed bound and the loop's lag is not watched. */
  adaptiveInFlight: boolean;
  minInFlight: number;
  inFlightLatencyTolerance: number;
  eventLoopLagLimitMs: number;
}

/** How often the loop's lag is checked: often enough that a few lagging turns close the gate within a second. */
const LAG_CHECK_MS = 20;
/** Lagging checks in a row that close the gate. */
const LAG_TURNS = 3;

/**
 * The process bound the configuration asks for; `stop` ends its timer. `observer` hears of each
 * change of the limit and each lag check (metrics).
 */
export function createProcessBound(
  options: ProcessBoundOptions,
  observer: { limit(limit: number): void; lag(lagMs: number): void },
): { bound: ProcessBound; stop(): void } {
  if (!options.adaptiveInFlight) {
    observer.limit(options.maxInFlight);
    return { bound: fixedBound(options.maxInFlight), stop: () => {} };
  }
  const limit = new AdaptiveLimit(
    { floor: options.minInFlight, ceiling: options.maxInFlight, tolerance: options.inFlightLatencyTolerance },
    (value) => observer.limit(value),
  );
  observer.limit(limit.limit);
  const gate = new LagGate(options.eventLoopLagLimitMs, LAG_TURNS);
  const stop = watchLoopLag(LAG_CHECK_MS, (lagMs) => {
    gate.observe(lagMs);
    observer.lag(lagMs);
  });
  return {
    bound: {
      // A lagging loop with little in flight is not lagging for the requests' sake (a long
      // collection, an embedded database's query, start-up): refusing would gain nothing.
      allows: (inFlight) => inFlight < limit.limit && (gate.open || inFlight < options.minInFlight),
      observe: (ms, inFlight) => limit.observe(ms, inFlight),
    },
    stop,
  };
}
