import { PermanentFailure, TemporaryFailure } from '../../failures.js';
import type { CommandResult } from '../../transports/transport.js';
import type { BlueprintRuntime, CommandRunnerOptions } from '../implementation.js';
import type { Phase } from './git.js';

// Runs a working copy's commands on its host (through the host lease) and turns a failure into
// an error that names the phase and the directory, logged with the command's output.

/** What a failed step is reported as: a git phase, or the removal of the copy. */
export type Step = Phase | 'remove';

export interface HostCommands {
  /** Runs argv; a failure throws, named after `step`, and is logged with its output. */
  run(step: Step, directory: string, argv: readonly string[], cwd?: string): Promise<CommandResult>;
  /** Runs argv whose failure is an answer, not an error (does the clone exist?). */
  probe(argv: readonly string[], cwd?: string): Promise<CommandResult>;
}

const tail = (text: string, max = 600) => {
  const trimmed = text.trim();
  return trimmed.length > max ? `…${trimmed.slice(-max)}` : trimmed;
};

// A prompt for credentials would wait for a terminal that never comes.
const env = { GIT_TERMINAL_PROMPT: '0', GIT_ASKPASS: 'true', LC_ALL: 'C' };

export function hostCommands(
  runtime: BlueprintRuntime,
  hostLeaseId: number,
  timeoutMs: number,
  options: CommandRunnerOptions = {},
): HostCommands {
  const exec = (argv: readonly string[], cwd?: string) =>
    runtime.commands.run(
      hostLeaseId,
      { argv, env, timeoutMs, signal: runtime.signal, ...(cwd ? { cwd } : {}) },
      options,
    );

  return {
    probe: exec,

    async run(step, directory, argv, cwd) {
      const result = await exec(argv, cwd);
      if (result.exitCode === 0) return result;
      const program = argv[0] === 'git' ? `git ${argv.find((a, i) => i > 0 && !isOption(argv, i))}` : argv[0];
      const how = result.timedOut
        ? `timed out after ${timeoutMs} ms`
        : result.exitCode === null
          ? 'did not run (the host could not be reached, or the work was stopped)'
          : `exited with ${result.exitCode}`;
      const output = tail(result.stderr) || tail(result.stdout);
      const message = `working copy ${step} failed for directory "${directory}": ${program} ${how}${output ? `: ${output}` : ''}`;
      await runtime.log(message, {
        phase: step,
        directory,
        exitCode: result.exitCode,
        timedOut: result.timedOut,
        stderr: tail(result.stderr, 4000),
      });
      // Unreachable or interrupted is worth another try; git saying no is not.
      if (result.exitCode === null && !result.timedOut) throw new TemporaryFailure(message);
      throw new PermanentFailure(message);
    },
  };
}

/** The subcommand is the first argument that is neither an option nor an option's value (`-c x`). */
function isOption(argv: readonly string[], i: number): boolean {
  return argv[i]!.startsWith('-') || argv[i - 1] === '-c';
}
