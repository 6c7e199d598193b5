import type { PassPacer } from '../context.js';

/**
 * Delays the passes requests ask for while the type is busy. A pass serves every lease waiting
 * when it starts, so one that starts `gapMs` after the request serves the requests that arrive
 * meanwhile too (their requests for it keep the earlier time its job row has): on a database that
 * runs one statement at a time (PGlite, in this process), passes that each found a single lease
 * took most of a saturated process's time. A type is busy while its last pass in this process
 * ended less than ten gaps ago; otherwise a request's pass starts at once, as without pacing.
 */
export class PassPacing implements PassPacer {
  /** performance.now() when each type's last pass in this process ended. */
  private readonly endedAt = new Map<string, number>();

  constructor(private readonly gapMs: number) {}

  /** How long a pass a request asks for now should wait, in ms (0: start it at once). */
  delayMs(resourceType: string): number {
    const ended = this.endedAt.get(resourceType);
    if (this.gapMs <= 0 || ended === undefined) return 0;
    return performance.now() - ended < 10 * this.gapMs ? this.gapMs : 0;
  }

  ended(resourceType: string): void {
    if (this.gapMs > 0) this.endedAt.set(resourceType, performance.now());
  }
}
