import {
  CliLeasesDocument,
  CliResourcesDocument,
  type LeaseStatus,
  type ResourceStatus,
} from '../../generated/graphql/graphql.js';
import { RANGES, wholeNumber } from '../args.js';
import { execute } from '../client/http.js';
import { collectPages } from '../client/pages.js';
import { UsageError } from '../errors.js';
import { leaseTable, resourceTable } from '../output/format.js';
import { defineCommand } from './command.js';

const LEASE_STATUSES: readonly LeaseStatus[] = ['PENDING', 'ACQUIRED', 'ACTIVE', 'RELEASED', 'BROKEN', 'DESTROYED'];
const RESOURCE_STATUSES: readonly ResourceStatus[] = ['PENDING', 'ACTIVE', 'RELEASED', 'BROKEN', 'DESTROYED'];

/** `--status active,pending` or repeated flags, any case; the default leaves out DESTROYED. */
export function statuses<S extends string>(given: string[] | undefined, all: readonly S[], everything: boolean): S[] {
  if (everything) return [...all];
  if (!given?.length) return all.filter((s) => s !== 'DESTROYED');
  return given
    .flatMap((value) => value.split(','))
    .map((value) => {
      const status = value.trim().toUpperCase() as S;
      if (!all.includes(status)) throw new UsageError(`--status must be one of ${all.join(', ')}, not "${value}"`);
      return status;
    });
}

export const leasesCommand = defineCommand({
  name: 'leases',
  summary: 'list leases (yours, or everyone’s for admins)',
  help: `
Usage: drydock leases [--status S]... [--type TYPE] [--all] [--limit N]

Lists leases newest last, without DESTROYED ones unless asked. A PENDING lease shows what it waits for.

Flags:
  --status S    PENDING, ACQUIRED, ACTIVE, RELEASED, BROKEN or DESTROYED (repeatable or comma-separated)
  --type TYPE   only leases of this resource type
  --all         every status, DESTROYED too
  --limit N     at most N leases (default 100)`,
  options: {
    status: { type: 'string', multiple: true },
    type: { type: 'string', short: 't' },
    all: { type: 'boolean' },
    limit: { type: 'string' },
  },
  positionals: false,
  async run({ values }, context) {
    const filter = {
      status: statuses(values.status, LEASE_STATUSES, values.all === true),
      ...(values.type ? { resourceType: values.type } : {}),
    };
    const leases = await collectPages(
      async (first, after) => (await execute(context.connection, CliLeasesDocument, { filter, first, after })).leases,
      values.limit === undefined ? 100 : wholeNumber('--limit', values.limit, RANGES.listLimit),
    );
    if (context.json) context.printJson(leases);
    else if (leases.length === 0) context.note('no leases');
    else context.print(leaseTable(leases));
    return 0;
  },
});

export const resourcesCommand = defineCommand({
  name: 'resources',
  summary: 'list resources',
  help: `
Usage: drydock resources [--status S]... [--type TYPE] [--all] [--limit N]

Lists resources, without DESTROYED ones unless asked.

Flags:
  --status S    PENDING, ACTIVE, RELEASED, BROKEN or DESTROYED (repeatable or comma-separated)
  --type TYPE   only resources of this type
  --all         every status, DESTROYED too
  --limit N     at most N resources (default 100)`,
  options: {
    status: { type: 'string', multiple: true },
    type: { type: 'string', short: 't' },
    all: { type: 'boolean' },
    limit: { type: 'string' },
  },
  positionals: false,
  async run({ values }, context) {
    const filter = {
      status: statuses(values.status, RESOURCE_STATUSES, values.all === true),
      ...(values.type ? { type: values.type } : {}),
    };
    const resources = await collectPages(
      async (first, after) =>
        (await execute(context.connection, CliResourcesDocument, { filter, first, after })).resources,
      values.limit === undefined ? 100 : wholeNumber('--limit', values.limit, RANGES.listLimit),
    );
    if (context.json) context.printJson(resources);
    else if (resources.length === 0) context.note('no resources');
    else context.print(resourceTable(resources));
    return 0;
  },
});
