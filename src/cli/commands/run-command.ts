import { RANGES, wholeNumber } from '../args.js';
import { globalId } from '../client/ids.js';
import { subscriptionClient } from '../client/ws.js';
import { UsageError } from '../errors.js';
import { streamCommand } from '../lease/stream-command.js';
import { defineCommand } from './command.js';

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
  --timeout SECONDS   kill the command after this long, 1 to 86400 (default 3600)

Example:
  drydock command --lease 7 -- git -C /srv/build log -1`,
  options: { lease: { type: 'string' }, timeout: { type: 'string' } },
  async run({ values, positionals }, context) {
    if (values.lease === undefined) throw new UsageError('--lease ID is required');
    if (positionals.length === 0) throw new UsageError('give the command to run after --, e.g. -- uname -a');
    const leaseId = globalId('Lease', values.lease);
    const timeoutSeconds =
      values.timeout === undefined ? null : wholeNumber('--timeout', values.timeout, RANGES.commandTimeoutSeconds);
    // Never retries: a client that reconnects subscribes again, which here would run the command
    // a second time.
    const client = await subscriptionClient(context.connection, { retry: false });
    try {
      return await streamCommand(
        client,
        context.connection,
        { leaseId, argv: positionals, timeoutSeconds },
        context.io,
        context.note,
      );
    } finally {
      await client.dispose();
    }
  },
});
