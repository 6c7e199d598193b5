import { CliDrainResourceDocument, CliUndrainResourceDocument } from '../../generated/graphql/graphql.js';
import { idArguments } from '../args.js';
import { execute } from '../client/http.js';
import { globalId } from '../client/ids.js';
import { payloadOf } from '../client/payload.js';
import { forEachId } from './batch.js';
import { defineCommand } from './command.js';

export const drainResourceCommand = defineCommand({
  name: 'drain-resource',
  summary: 'take resources out of service gently: no new leases (admins, blueprint owners)',
  help: `
Usage: drydock drain-resource --id ID... [--release]

A draining resource takes no new lease; the leases on it run to their end. Leases waiting for
its capacity say "draining". undrain-resource puts it back in service.

Flags:
  --id ID     resource id (repeatable; more ids may follow)
  --release   release the resource once no lease is left on it`,
  options: { id: { type: 'string', multiple: true }, release: { type: 'boolean' } },
  async run({ values, positionals }, context) {
    const release = values.release ?? false;
    return forEachId(
      context,
      idArguments(values.id, positionals).map((id) => globalId('Resource', id)),
      'resource',
      async (id) => {
        const { drainResource } = await execute(context.connection, CliDrainResourceDocument, { id, release });
        return payloadOf(drainResource, 'ResourcePayload').resource;
      },
      (resource) =>
        `resource ${resource.databaseId} (${resource.name}) ${resource.status}: draining${release ? ', released once idle' : ''}`,
    );
  },
});

export const undrainResourceCommand = defineCommand({
  name: 'undrain-resource',
  summary: 'end drains: resources take leases again (admins, blueprint owners)',
  help: `
Usage: drydock undrain-resource --id ID...

Ends each resource's drain: it takes leases again, and leases that waited for it are served.

Flags:
  --id ID   resource id (repeatable; more ids may follow)`,
  options: { id: { type: 'string', multiple: true } },
  async run({ values, positionals }, context) {
    return forEachId(
      context,
      idArguments(values.id, positionals).map((id) => globalId('Resource', id)),
      'resource',
      async (id) => {
        const { undrainResource } = await execute(context.connection, CliUndrainResourceDocument, { id });
        return payloadOf(undrainResource, 'ResourcePayload').resource;
      },
      (resource) => `resource ${resource.databaseId} (${resource.name}) ${resource.status}: in service`,
    );
  },
});
