import { CliLeaseEventsDocument, CliLeaseLogDocument } from '../../generated/graphql/graphql.js';
import { execute } from '../client/http.js';
import { globalId } from '../client/ids.js';
import { subscribe, subscriptionClient } from '../client/ws.js';
import { CliError, ExitCode, UsageError } from '../errors.js';
import { logLine } from '../lease/describe.js';
import { defineCommand } from './command.js';

export const logCommand = defineCommand({
  name: 'log',
  summary: "print a lease's log (--follow: and what happens next)",
  help: `
Usage: drydock log --lease ID [--follow]

Prints every log entry of the lease, oldest first. With --follow, keeps printing new entries
until the lease is DESTROYED or Ctrl-C. With --json, one JSON object per entry and line.

Flags:
  --lease ID    the lease (its number or its global id)
  -f, --follow  keep following the lease`,
  options: { lease: { type: 'string' }, follow: { type: 'boolean', short: 'f' } },
  positionals: false,
  async run({ values }, context) {
    if (!values.lease) throw new UsageError('--lease ID is required');
    const id = globalId('Lease', values.lease);
    const print = (
      entry: { cursor: string; type: string; data: unknown; createdAt: string },
      lease: { databaseId: number },
    ) =>
      context.json
        ? context.io.stdout.write(`${JSON.stringify({ lease: lease.databaseId, ...entry })}\n`)
        : context.print(logLine(lease, entry));
    if (!values.follow) {
      const { lease } = await execute(context.connection, CliLeaseLogDocument, { id });
      if (!lease) throw new CliError(`lease ${values.lease} not found`);
      for (const entry of lease.logs) print(entry, lease);
      return ExitCode.ok;
    }
    // From the beginning: the stream replays what happened, then goes on live, and completes once
    // the lease is DESTROYED. Cursors make a reconnect's replay print nothing twice.
    const client = await subscriptionClient(context.connection);
    let last = -1n;
    try {
      return await new Promise<number>((resolve, reject) => {
        const unsubscribe = subscribe(
          client,
          context.connection,
          CliLeaseEventsDocument,
          { leaseId: id, after: '0' },
          {
            next: ({ leaseEvents: event }) => {
              const cursor = BigInt(event.cursor);
              if (cursor <= last) return;
              last = cursor;
              print({ cursor: event.cursor, ...event.log }, event.lease);
            },
            error: (error: CliError) => reject(error),
            complete: () => resolve(ExitCode.ok),
          },
        );
        context.io.interrupted.addEventListener('abort', () => {
          unsubscribe();
          resolve(ExitCode.ok);
        });
      });
    } finally {
      await client.dispose();
    }
  },
});
