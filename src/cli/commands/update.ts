import {
  CliReclaimResourcesDocument,
  CliUpdateLeaseDocument,
  CliUpdateResourceDocument,
} from '../../generated/graphql/graphql.js';
import { idArguments } from '../args.js';
import { execute } from '../client/http.js';
import { globalId } from '../client/ids.js';
import { payloadOf } from '../client/payload.js';
import { resourceTable } from '../output/format.js';
import { forEachId } from './batch.js';
import { defineCommand } from './command.js';

export const updateLeaseCommand = defineCommand({
  name: 'update-lease',
  summary: "run leases' updates now (retry allocation without waiting for the backoff)",
  help: `
Usage: drydock update-lease --id ID...

Runs each lease's update now instead of at its next scheduled time: a waiting lease retries
allocation at once, an expired one releases itself.

Flags:
  --id ID   lease id (repeatable; more ids may follow)`,
  options: { id: { type: 'string', multiple: true } },
  async run({ values, positionals }, context) {
    return forEachId(
      context,
      idArguments(values.id, positionals).map((id) => globalId('Lease', id)),
      'lease',
      async (id) => {
        const { updateLease } = await execute(context.connection, CliUpdateLeaseDocument, { id });
        return payloadOf(updateLease, 'LeasePayload').lease;
      },
      (lease) => `lease ${lease.databaseId} ${lease.status}: update scheduled`,
    );
  },
});

export const updateResourceCommand = defineCommand({
  name: 'update-resource',
  summary: "run resources' updates now (admins)",
  help: `
Usage: drydock update-resource --id ID...

Runs each resource's update now instead of at its next scheduled time.

Flags:
  --id ID   resource id (repeatable; more ids may follow)`,
  options: { id: { type: 'string', multiple: true } },
  async run({ values, positionals }, context) {
    return forEachId(
      context,
      idArguments(values.id, positionals).map((id) => globalId('Resource', id)),
      'resource',
      async (id) => {
        const { updateResource } = await execute(context.connection, CliUpdateResourceDocument, { id });
        return payloadOf(updateResource, 'ResourcePayload').resource;
      },
      (resource) => `resource ${resource.databaseId} (${resource.name}) ${resource.status}: update scheduled`,
    );
  },
});

export const reclaimCommand = defineCommand({
  name: 'reclaim',
  summary: 'release idle resources so their capacity can serve other leases (admins)',
  help: `
Usage: drydock reclaim [--type TYPE]

Asks every idle resource (no live lease, idle past the grace period) to go, optionally only
those of one resource type, and lists the ones asked.

Flags:
  --type TYPE   only resources of this type`,
  options: { type: { type: 'string', short: 't' } },
  positionals: false,
  async run({ values }, context) {
    const { reclaimResources } = await execute(context.connection, CliReclaimResourcesDocument, {
      resourceType: values.type ?? null,
    });
    const { resources } = payloadOf(reclaimResources, 'ReclaimResourcesPayload');
    if (context.json) context.printJson(resources);
    else if (resources.length === 0) context.print('no idle resources to reclaim');
    else context.print(resourceTable(resources));
    return 0;
  },
});
