import { shownId } from '../client/ids.js';
import { CliError, ExitCode, UsageError } from '../errors.js';
import type { Context } from './command.js';

/**
 * Runs an action on each id, reporting each success or failure on its own line; the exit code is
 * 1 if any failed, so `--id 1 2 3` goes on past a bad id but a script still sees the failure.
 */
export async function forEachId<T>(
  context: Context,
  ids: string[],
  what: string,
  action: (id: string) => Promise<T>,
  describe: (result: T) => string,
): Promise<number> {
  if (ids.length === 0) throw new UsageError(`give the ${what} ids with --id ID... (or --all where offered)`);
  const results: T[] = [];
  let failed = 0;
  // An id given twice is acted on once: the second would only fail ("already DESTROYED").
  for (const id of new Set(ids)) {
    try {
      const result = await action(id);
      results.push(result);
      if (!context.json) context.print(describe(result));
    } catch (error) {
      if (
        !(error instanceof CliError) ||
        error.exitCode === ExitCode.unreachable ||
        error.exitCode === ExitCode.unauthenticated
      )
        throw error;
      failed++;
      // The API's message mostly names the object already ("lease 9 does not exist").
      const shown = `${what} ${shownId(id)}`;
      context.note(`drydock: ${error.message.startsWith(`${shown} `) ? error.message : `${shown}: ${error.message}`}`);
    }
  }
  if (context.json) context.printJson(results);
  return failed > 0 ? ExitCode.failed : ExitCode.ok;
}
