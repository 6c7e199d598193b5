import type { TransportConfig } from './config.js';

// How the server reaches a leased host to run a command on it. A transport is built per use from
// a binding's config (and a credential, for ssh); it holds no connection between uses.

export type OutputStream = 'stdout' | 'stderr';

export interface CommandSpec {
  /** The program and its arguments; never passed through a local shell. */
  argv: readonly string[];
  /** Working directory on the host. */
  cwd?: string;
  env?: Readonly<Record<string, string>>;
  /** Kills the command (and fails with timedOut) after this long. */
  timeoutMs?: number;
  signal?: AbortSignal;
  /** Output as it arrives, for streaming to a client or a log. */
  onOutput?(stream: OutputStream, chunk: string): void;
}

export interface CommandResult {
  /** null when the command was killed (timeout, abort) or the transport failed to connect. */
  exitCode: number | null;
  /** Output kept for the caller, truncated from the front past a limit. */
  stdout: string;
  stderr: string;
  timedOut: boolean;
}

export interface HostTransport {
  kind: 'ssh' | 'local';
  /** Connection details safe to show the lease's owner (never a secret). */
  describe(): Record<string, unknown>;
  run(spec: CommandSpec): Promise<CommandResult>;
}

/** A host's address and how to reach it (a host-pool binding's `transport`). */
export interface TransportTarget {
  address: string;
  port: number;
  transport: TransportConfig;
}

/** Builds transports; looks up credentials and enforces the operator's switches (local off by default). */
export interface TransportFactory {
  /** Throws PermanentFailure with a clear message when the target cannot be reached this way at all. */
  open(target: TransportTarget): Promise<HostTransport>;
}
