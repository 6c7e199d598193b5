import { runProcess } from './process.js';
import type { HostTransport } from './transport.js';

// The variables a command may see from the server's own environment. Everything else (database
// URLs, tokens) stays in the server: a leased command has no business reading it.
const INHERITED = ['PATH', 'HOME', 'USER', 'LOGNAME', 'SHELL', 'LANG', 'LC_ALL', 'LC_CTYPE', 'TZ', 'TMPDIR'];

/** The base environment of commands run on this machine. */
export function baseEnvironment(source: NodeJS.ProcessEnv = process.env): Record<string, string> {
  const env: Record<string, string> = {};
  for (const name of INHERITED) {
    const value = source[name];
    if (value !== undefined) env[name] = value;
  }
  return env;
}

/**
 * Runs commands on the server's own machine, as the server's user. Only for single-machine setups
 * and tests: the factory refuses it unless the operator enabled it.
 */
export function localTransport(options: { outputLimit?: number } = {}): HostTransport {
  return {
    kind: 'local',
    describe: () => ({ kind: 'local' }),
    run: (spec) =>
      runProcess({
        argv: spec.argv,
        cwd: spec.cwd,
        env: { ...baseEnvironment(), ...spec.env },
        timeoutMs: spec.timeoutMs,
        signal: spec.signal,
        onOutput: spec.onOutput?.bind(spec),
        outputLimit: options.outputLimit,
      }),
  };
}
