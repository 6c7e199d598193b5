import { CliRunLeaseCommandDocument } from '../../generated/graphql/graphql.js';
import { positiveInteger } from '../args.js';
import { globalId } from '../client/ids.js';
import { mutationError } from '../client/payload.js';
import { subscribe, subscriptionClient } from '../client/ws.js';
import { CliError, ExitCode, UsageError } from '../errors.js';
import { defineCommand } from './command.js';

/** What `timeout(1)` exits with, so scripts treat a drydock timeout like any other. */
const TIMED_OUT = 124;
/** What ssh exits with when it never reached the host (or the command was killed). */
const NO_EXIT_CODE = 255;

export const runCommand = defineCommand({
  name: 'command',
  summary: "run a command on a lease's host and stream its output",
  help: `
Usage: drydock command --lease ID [--timeout SECONDS] -- PROGRAM [ARGS...]

Runs PROGRAM with ARGS through an ACTIVE lease (over ssh, or locally when the server allows it;
in the lease's directory for a working copy). The arguments reach the program as they are, with
no shell in between. Its stdout and stderr stream to yours as it runs. Ctrl-C kills it.

Exits with the command's exit code; 124 when it timed out, 255 when it has none (the host could
not be reached, or it was killed).

Flags:
  --lease ID          the lease, as the listings show it
  --timeout SECONDS   kill the command after this long (default 3600, at most 86400)

Example:
  drydock command --lease 7 -- git -C /srv/build log -1`,
  options: { lease: { type: 'string' }, timeout: { type: 'string' } },
  async run({ values, positionals }, context) {
    if (values.lease === undefined) throw new UsageError('--lease ID is required');
    if (positionals.length === 0) throw new UsageError('give the command to run after --, e.g. -- uname -a');
    const leaseId = globalId('Lease', values.lease);
    const timeoutSeconds = values.timeout === undefined ? null : positiveInteger('--timeout', values.timeout, 0);
    const { stdout, stderr } = context.io;
    // Never retries: a client that reconnects subscribes again, which here would run the command
    // a second time.
    const client = await subscriptionClient(context.connection, { retry: false });
    try {
      return await new Promise<number>((resolve, reject) => {
        let exit: number | undefined;
        const onAbort = () => {
          // Leaving the subscription is what kills the command on the server.
          unsubscribe();
          resolve(ExitCode.interrupted);
        };
        const unsubscribe = subscribe(
          client,
          context.connection,
          CliRunLeaseCommandDocument,
          { leaseId, argv: positionals, timeoutSeconds },
          {
            next: ({ runLeaseCommand: event }) => {
              if (event.__typename === 'LeaseCommandOutput') {
                (event.stream === 'STDOUT' ? stdout : stderr).write(event.text);
              } else if (event.__typename === 'LeaseCommandExit') {
                if (event.timedOut) context.note(`drydock: the command timed out`);
                exit = event.timedOut ? TIMED_OUT : (event.exitCode ?? NO_EXIT_CODE);
              } else {
                reject(mutationError(event));
              }
            },
            error: (error: CliError) => reject(error),
            complete: () => {
              context.io.interrupted.removeEventListener('abort', onAbort);
              if (exit === undefined) reject(new CliError('the server ended the command without its exit status'));
              else resolve(exit);
            },
          },
        );
        context.io.interrupted.addEventListener('abort', onAbort, { once: true });
      });
    } finally {
      await client.dispose();
    }
  },
});
