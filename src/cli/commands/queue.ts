import { CliQueueDocument } from '../../generated/graphql/graphql.js';
import { RANGES, wholeNumber } from '../args.js';
import { execute } from '../client/http.js';
import { payloadOf } from '../client/payload.js';
import { UsageError } from '../errors.js';
import { table } from '../output/table.js';
import { defineCommand } from './command.js';

export const queueCommand = defineCommand({
  name: 'queue',
  summary: 'show the waiting leases of a resource type in the order they will be served',
  help: `
Usage: drydock queue --type TYPE [--limit N]

Lists the PENDING leases of a type in the order the next scheduling pass considers them (priority
raised by waiting, then fair share between owners, then arrival), each with what blocks it.
Leases of other owners are shown without their id (unless you are an administrator).

Flags:
  --type TYPE   resource type, e.g. host (required)
  --limit N     at most N entries (default 100, at most 1000)`,
  options: {
    type: { type: 'string', short: 't' },
    limit: { type: 'string' },
  },
  positionals: false,
  async run({ values }, context) {
    if (!values.type) throw new UsageError('--type is required, e.g. drydock queue --type host');
    const result = await execute(context.connection, CliQueueDocument, {
      resourceType: values.type,
      first: values.limit === undefined ? 100 : wholeNumber('--limit', values.limit, RANGES.queueLimit),
    });
    const { entries } = payloadOf(result.queue, 'Queue');
    if (context.json) context.printJson(entries);
    else if (entries.length === 0) context.note(`nothing waits for ${values.type}`);
    else
      context.print(
        table(
          ['#', 'LEASE', 'PRIORITY', 'BAND', 'WAITING FOR'],
          entries.map((entry) => [
            String(entry.position),
            entry.lease ? String(entry.lease.databaseId) : '(other owner)',
            String(entry.priority),
            String(entry.band),
            entry.blockerMessage ?? 'its turn',
          ]),
        ),
      );
    return 0;
  },
});
