import type { Client } from 'graphql-ws';
import { CliRunLeaseCommandDocument } from '../../generated/graphql/graphql.js';
import type { Connection } from '../client/http.js';
import { mutationError } from '../client/payload.js';
import { subscribe } from '../client/ws.js';
import { CliError, ExitCode } from '../errors.js';

/** What `timeout(1)` exits with, so scripts treat a drydock timeout like any other. */
const TIMED_OUT = 124;
/** What ssh exits with when it never reached the host (or the command was killed). */
const NO_EXIT_CODE = 255;

export interface CommandOnLease {
  leaseId: string;
  argv: string[];
  timeoutSeconds: number | null;
  /** The lease's fence: the server refuses the command unless it is still the current one. */
  fence?: number | null;
}

/**
 * Runs a command through a lease and streams its output to ours; resolves with the exit code to
 * return (the command's; 124 timed out; 255 none; 130 interrupted, which kills it on the server).
 */
export function streamCommand(
  client: Client,
  connection: Connection,
  command: CommandOnLease,
  io: { stdout: NodeJS.WritableStream; stderr: NodeJS.WritableStream; interrupted: AbortSignal },
  note: (text: string) => void,
): Promise<number> {
  return new Promise<number>((resolve, reject) => {
    let exit: number | undefined;
    const onAbort = () => {
      // Leaving the subscription is what kills the command on the server.
      unsubscribe();
      resolve(ExitCode.interrupted);
    };
    const unsubscribe = subscribe(
      client,
      connection,
      CliRunLeaseCommandDocument,
      {
        leaseId: command.leaseId,
        argv: command.argv,
        timeoutSeconds: command.timeoutSeconds,
        fence: command.fence ?? null,
      },
      {
        next: ({ runLeaseCommand: event }) => {
          if (event.__typename === 'LeaseCommandOutput') {
            (event.stream === 'STDOUT' ? io.stdout : io.stderr).write(event.text);
          } else if (event.__typename === 'LeaseCommandExit') {
            if (event.timedOut) note(`drydock: the command timed out`);
            exit = event.timedOut ? TIMED_OUT : (event.exitCode ?? NO_EXIT_CODE);
          } else {
            reject(mutationError(event));
          }
        },
        error: (error: CliError) => reject(error),
        complete: () => {
          io.interrupted.removeEventListener('abort', onAbort);
          if (exit === undefined) reject(new CliError('the server ended the command without its exit status'));
          else resolve(exit);
        },
      },
    );
    if (io.interrupted.aborted) onAbort();
    else io.interrupted.addEventListener('abort', onAbort, { once: true });
  });
}
