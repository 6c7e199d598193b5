import {
  CliLeasesDocument,
  CliReleaseResourceDocument,
  CliResourcesDocument,
  CliViewerDocument,
} from '../../generated/graphql/graphql.js';
import { idArguments } from '../args.js';
import { execute } from '../client/http.js';
import { globalId } from '../client/ids.js';
import { collectPages } from '../client/pages.js';
import { payloadOf } from '../client/payload.js';
import { UsageError } from '../errors.js';
import { releaseLease } from '../lease/release.js';
import { forEachId } from './batch.js';
import { defineCommand } from './command.js';

const LIVE_LEASES = ['PENDING', 'ACQUIRED', 'ACTIVE'] as const;
const LIVE_RESOURCES = ['PENDING', 'ACTIVE'] as const;

function chooseIds(values: { id?: string[] | undefined; all?: boolean | undefined }, positionals: string[]) {
  const ids = idArguments(values.id, positionals);
  if (values.all && ids.length > 0) throw new UsageError('give either --id or --all, not both');
  return ids;
}

export const releaseLeaseCommand = defineCommand({
  name: 'release-lease',
  summary: 'release leases (--id ID... or --all of yours)',
  help: `
Usage: drydock release-lease --id ID... | --all

Asks each lease to release its resource; it goes RELEASED, then DESTROYED.

Flags:
  --id ID   lease id as the listings show it (repeatable; more ids may follow)
  --all     every lease of yours that is PENDING, ACQUIRED or ACTIVE (never other principals',
            nor those a resource holds for itself)`,
  options: { id: { type: 'string', multiple: true }, all: { type: 'boolean' } },
  async run({ values, positionals }, context) {
    let ids = chooseIds(values, positionals).map((id) => globalId('Lease', id));
    if (values.all) {
      // Yours only, even for an administrator, who sees everyone's: --all is "clean up after me".
      const { viewer } = await execute(context.connection, CliViewerDocument, {});
      const leases = await collectPages(async (first, after) => {
        const data = await execute(context.connection, CliLeasesDocument, {
          filter: { status: [...LIVE_LEASES], ownerId: viewer.id },
          first,
          after,
        });
        return data.leases;
      });
      ids = leases.map((lease) => lease.id);
      if (ids.length === 0) {
        context.note('no live leases to release');
        if (context.json) context.printJson([]);
        return 0;
      }
    }
    return forEachId(
      context,
      ids,
      'lease',
      async (id) => {
        const result = await releaseLease(context.connection, id);
        if (!result.ok) throw result.error;
        return result.lease;
      },
      (lease) => `lease ${lease.databaseId} ${lease.status}: release requested`,
    );
  },
});

export const releaseResourceCommand = defineCommand({
  name: 'release-resource',
  summary: 'release resources and every lease on them (admins)',
  help: `
Usage: drydock release-resource --id ID... | --all

Releases each resource: every live lease on it is released first, then it is destroyed.

Flags:
  --id ID   resource id as the listings show it (repeatable; more ids may follow)
  --all     every PENDING or ACTIVE resource`,
  options: { id: { type: 'string', multiple: true }, all: { type: 'boolean' } },
  async run({ values, positionals }, context) {
    let ids = chooseIds(values, positionals).map((id) => globalId('Resource', id));
    if (values.all) {
      const resources = await collectPages(async (first, after) => {
        const data = await execute(context.connection, CliResourcesDocument, {
          filter: { status: [...LIVE_RESOURCES] },
          first,
          after,
        });
        return data.resources;
      });
      ids = resources.map((resource) => resource.id);
      if (ids.length === 0) {
        context.note('no live resources to release');
        if (context.json) context.printJson([]);
        return 0;
      }
    }
    return forEachId(
      context,
      ids,
      'resource',
      async (id) => {
        const { releaseResource } = await execute(context.connection, CliReleaseResourceDocument, { id });
        return payloadOf(releaseResource, 'ResourcePayload').resource;
      },
      (resource) => `resource ${resource.databaseId} (${resource.name}) ${resource.status}: release requested`,
    );
  },
});
