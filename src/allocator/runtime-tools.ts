import type { CommandRunner } from '../blueprints/implementation.js';
import { PermanentFailure } from '../failures.js';
import type { TransportFactory } from '../transports/transport.js';

/** What the outside-transaction hooks reach the world through; services build it once per process. */
export interface RuntimeTools {
  transports: TransportFactory;
  commands: CommandRunner;
  /** Aborted at shutdown, so that long setups stop and are retried by another process. */
  signal: AbortSignal;
}

/** For a process that has not been given transports: every use fails with a clear reason. */
export function noRuntimeTools(signal: AbortSignal = new AbortController().signal): RuntimeTools {
  const unavailable = () => Promise.reject(new PermanentFailure('this process has no host transports configured'));
  return { transports: { open: unavailable }, commands: { transportOf: unavailable, run: unavailable }, signal };
}
