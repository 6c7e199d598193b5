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
import { transitionsSince } from '../lease/transitions.js';
import { leaseTable, resourceLabel } from '../output/format.js';
import { defineCommand } from './command.js';

export const watchCommand = defineCommand({
  name: 'watch',
  summary: 'a live table of leases, updated as they change',
  help: `
Usage: drydock watch [--type TYPE] [--all]

On a terminal, redraws a table of live leases whenever one changes; otherwise prints one line per
transition of a lease, each once (with --json, one JSON object per line, its status the
transition's). Ctrl-C stops.

Flags:
  --type TYPE   only leases of this resource type
  --all         keep DESTROYED leases in the table`,
  options: { type: { type: 'string', short: 't' }, all: { type: 'boolean' } },
  positionals: false,
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
      const previous = leases.get(lease.id)?.status;
      leases.set(lease.id, lease);
      if (live) return;
      // One line per transition, each once: see transitionsSince.
      for (const status of transitionsSince(previous, lease)) {
        if (context.json) stdout.write(`${JSON.stringify({ ...lease, status })}\n`);
        else {
          const time = new Date().toISOString().slice(11, 19);
          context.print(
            `${time}  lease ${lease.databaseId}  ${status}  ${lease.resourceType}  ${resourceLabel(lease.resource)}`,
          );
        }
      }
    };

    const client = await subscriptionClient(context.connection);
    const connected = new Promise<void>((resolve) => client.on('connected', () => resolve()));
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
      // Listed once the subscription's socket is up, so that "watching" means watching: a script
      // (or a test) may start changing leases as soon as it reads that line.
      await connected;
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
      else context.note(`watching ${initial.length} live lease(s); Ctrl-C stops`);
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
