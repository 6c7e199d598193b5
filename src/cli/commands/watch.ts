import {
  CliLeasesChangedDocument,
  CliLeasesDocument,
  type CliLeaseFragment,
  type LeaseFilter,
} from '../../generated/graphql/graphql.js';
import { execute } from '../client/http.js';
import { collectPages } from '../client/pages.js';
import { subscribe, subscriptionClient } from '../client/ws.js';
import { type CliError, ExitCode } from '../errors.js';
import { leaseTable, resourceLabel } from '../output/format.js';
import { defineCommand } from './command.js';

export const watchCommand = defineCommand({
  name: 'watch',
  summary: 'a live table of leases, updated as they change',
  help: `
Usage: drydock watch [--type TYPE] [--all]

On a terminal, redraws a table of live leases whenever one changes; otherwise prints one line per
change (with --json, one JSON object per line). Ctrl-C stops.

Flags:
  --type TYPE   only leases of this resource type
  --all         keep DESTROYED leases in the table`,
  options: { type: { type: 'string', short: 't' }, all: { type: 'boolean' } },
  async run({ values }, context) {
    const filter: LeaseFilter = values.type ? { resourceType: values.type } : {};
    const { stdout } = context.io;
    const leases = new Map<string, CliLeaseFragment>();
    const keep = (lease: CliLeaseFragment) => values.all === true || lease.status !== 'DESTROYED';
    const live = stdout.isTTY && !context.json;

    const draw = () => {
      const rows = [...leases.values()].filter(keep).sort((a, b) => a.databaseId - b.databaseId);
      stdout.write(
        `\x1b[H\x1b[2J${context.server}  ${new Date().toLocaleTimeString()}  (Ctrl-C to stop)\n\n` +
          (rows.length > 0 ? leaseTable(rows) : 'no live leases') +
          '\n',
      );
    };
    const onChange = (lease: CliLeaseFragment) => {
      leases.set(lease.id, lease);
      if (context.json) stdout.write(`${JSON.stringify(lease)}\n`);
      else if (!live) {
        const time = new Date().toISOString().slice(11, 19);
        context.print(
          `${time}  lease ${lease.databaseId}  ${lease.status}  ${lease.resourceType}  ${resourceLabel(lease.resource)}`,
        );
      }
    };

    const client = await subscriptionClient(context.connection);
    try {
      // Subscribe first, then list: a change in between shows up in the subscription instead of being lost.
      const ended = new Promise<number>((resolve, reject) => {
        const unsubscribe = subscribe(
          client,
          context.connection,
          CliLeasesChangedDocument,
          { filter },
          {
            next: (data) => {
              onChange(data.leasesChanged);
              if (live) draw();
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
      const initial = await collectPages(
        async (first, after) =>
          (
            await execute(context.connection, CliLeasesDocument, {
              filter: { ...filter, status: ['PENDING', 'ACQUIRED', 'ACTIVE', 'RELEASED', 'BROKEN'] },
              first,
              after,
            })
          ).leases,
      );
      for (const lease of initial) if (!leases.has(lease.id)) leases.set(lease.id, lease);
      if (live) draw();
      else if (!context.json) context.note(`watching ${initial.length} live lease(s); Ctrl-C stops`);
      // Redraw each second on a terminal so ages and the clock stay current.
      const timer = live ? setInterval(draw, 1000) : undefined;
      try {
        return await ended;
      } finally {
        clearInterval(timer);
      }
    } finally {
      await client.dispose();
    }
  },
});
