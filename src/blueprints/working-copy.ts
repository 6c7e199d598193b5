import type { Lease } from '../generated/prisma/client.js';
import { PermanentFailure } from '../failures.js';
import { defineImplementation, type BlueprintOf, type BlueprintRuntime } from './implementation.js';
import {
  copyAttributes,
  leaseRequest,
  urlsOf,
  workingCopyLeaseAttributes,
  type WorkingCopyResourceAttributes,
} from './working-copy/attributes.js';
import { workingCopyConfig, type WorkingCopyConfig } from './working-copy/config.js';
import * as git from './working-copy/git.js';
import { hostCommands } from './working-copy/host-git.js';
import { copyPath, repositoryPath } from './working-copy/names.js';
import { cloneCopy, prepareCopy } from './working-copy/setup.js';

// Drydock's working-copy blueprint: git repositories cloned on a leased host.
//
// A resource is one copy: a directory `<root>/<resource id>` on a host, holding one clone per
// directory of a repository map. The resource leases its host itself (as the blueprint's
// principal, so the blueprint must be authorized on the host blueprint) and opens once that
// lease is ACTIVE and every repository is cloned. A lease on a copy is exclusive (slot lock
// `working-copy.lease(<resource id>)`); before it becomes ACTIVE, the copy is cleaned, fetched,
// checked out and merged as the lease asks. Destroying the copy removes its directory and
// releases the host lease. Commands on a lease (`drydock command --lease`) run in the copy.
//
// Config:
//   { root: "/var/drydock/copies",                  copies go in <root>/<resource id>
//     host?: { resourceType?: "host", attributes?: { platform: "linux" }, blueprintIds?: [3] },
//     commandTimeoutSeconds?: 900 }                   per git command
//
// Lease attributes:
//   { repositories: {
//       "<directory>": {                             relative; no "..", "." or empty segments,
//         url: "https://git.example.com/app.git",    no leading "/" or "-", no nesting
//         commit?: "<hash>" | branch?: "main" | ref?: "refs/changes/1/1",   at most one; none:
//                                                    the remote HEAD. A ref is fetched by name.
//         merges?: ["feature", "refs/changes/2/1"]   squash-merged in order, one commit each
//       }, ... },
//     strict?: false }                               true: only copies with no other directories
//
// A lease is served by a copy that has every directory it asks for, cloned from the same URL.
// A failed step breaks the lease with a message naming its phase (clone, clean, fetch, checkout,
// merge), also in the log's `phase`. The blueprint's resource limit caps how many copies exist.

type WorkingCopy = BlueprintOf<WorkingCopyConfig>;

export const leaseSlotKey = (resourceId: number) => `working-copy.lease(${resourceId})`;

const timeoutOf = (blueprint: WorkingCopy) => blueprint.config.commandTimeoutSeconds * 1000;

/** The copy's host lease once it opened, and where the copy is. */
function opened(attributes: WorkingCopyResourceAttributes, resourceId: number) {
  if (attributes.hostLeaseId === undefined) throw new PermanentFailure(`working copy ${resourceId} is not open yet`);
  return { hostLeaseId: attributes.hostLeaseId, path: copyPath(attributes.root, resourceId) };
}

/** "host lease 3 is BROKEN (no-authorizations)": why, when the allocator said. */
const describeHost = (lease: Lease) =>
  `host lease ${lease.id} is ${lease.status}${lease.statusReason ? ` (${lease.statusReason})` : ''}`;

/** The one host lease of the copy: requested on the first activation attempt, found on the next ones. */
async function hostLease(blueprint: WorkingCopy, runtime: BlueprintRuntime): Promise<Lease> {
  const [existing] = await runtime.leases.list();
  if (existing) return existing;
  const { resourceType, attributes, blueprintIds } = blueprint.config.host;
  const lease = await runtime.leases.request({ resourceType, attributes, blueprintIds });
  await runtime.log(`requested host lease ${lease.id}`, { hostLeaseId: lease.id });
  return lease;
}

/**
 * Why the copy cannot open, as a failure that says what to do. A host lease refused for a missing
 * authorization (or one no host blueprint could ever serve) would be refused again for every new
 * copy, so the failure is hopeless: the lease breaks at once instead of building copies to no end.
 */
async function hostFailure(blueprint: WorkingCopy, host: Lease, runtime: BlueprintRuntime): Promise<PermanentFailure> {
  const verdict = await runtime.leases.whyBroken(host.id);
  if (verdict?.reason === 'no-authorizations') {
    // The message reaches the copy's lease, whose owner sees this blueprint's config but maybe not
    // the host blueprints the host lease's verdict names: only those the config names are told.
    const { blueprintIds: configured, resourceType } = blueprint.config.host;
    const hosts = verdict.blueprintIds?.filter((id) => configured.includes(id)) ?? [];
    const named = hosts.length > 0 ? hosts : configured;
    const on = named.length > 0 ? `host blueprint(s) ${named.join(', ')}` : `any blueprint yielding "${resourceType}"`;
    const first = named[0] ?? '<host blueprint>';
    return new PermanentFailure(
      `${describeHost(host)}: working-copy blueprint ${blueprint.id} leases its host as its own principal ` +
        `(blueprint:${blueprint.id}), which is not authorized on ${on}. ` +
        `Request it: drydock authorization request --blueprint ${first} --for-blueprint ${blueprint.id} ` +
        `(GraphQL: requestBlueprintAuthorization(blueprintId: <blueprint ${first}>, principalId: <blueprint ${blueprint.id}'s principal>)), ` +
        `then approve it: drydock authorization authorize --id <authorization id>`,
      { hopeless: true },
    );
  }
  const hopeless = verdict?.reason === 'no-blueprints' || verdict?.reason === 'cannot-ever-allocate';
  // That verdict names the host blueprints and what their implementations said; the copy's lease
  // owner may not see them, an administrator reads them in the host lease's log.
  const why =
    verdict?.reason === 'cannot-ever-allocate'
      ? `: no host blueprint it may lease can ever satisfy the host lease (an administrator reads why in its log: drydock log --lease ${host.id})`
      : verdict
        ? `: ${verdict.message}`
        : '';
  return new PermanentFailure(`${describeHost(host)}${why}: the copy has no host`, { hopeless });
}

export const workingCopy = defineImplementation<WorkingCopyConfig>({
  key: 'working-copy',
  resourceType: 'working-copy',
  configSchema: workingCopyConfig,
  leaseAttributesSchema: workingCopyLeaseAttributes,
  description:
    'Git working copies on a leased host: each lease gets one copy to itself, checked out at the commit, branch or ref it asks for.',

  canEverAllocate: (_blueprint, lease) => leaseRequest(lease) !== null,

  explainCannotEverAllocate(_blueprint, lease) {
    const parsed = workingCopyLeaseAttributes.safeParse(lease.attributes ?? {});
    const issue = parsed.success ? undefined : parsed.error.issues[0];
    if (!issue) return { message: 'the lease is not a working-copy request' };
    const attribute = issue.path.map(String).join('.');
    return { attribute, message: `attribute "${attribute}": ${issue.message}` };
  },

  // The host blueprints must exist and yield the host lease's type, or no copy could ever open.
  references: (config) =>
    config.host.blueprintIds.map((id, i) => ({
      kind: 'blueprint' as const,
      id,
      resourceType: config.host.resourceType,
      path: ['host', 'blueprintIds', i],
    })),

  // The allocator enforces the blueprint's resource limit; a copy needs nothing else to exist.
  canAllocateNow: async () => true,

  async allocateResource(blueprint, lease) {
    const request = leaseRequest(lease);
    if (!request) throw new PermanentFailure(`lease ${lease.id} does not ask for a working copy`);
    const repositories = urlsOf(request);
    const name = Object.keys(repositories).join(', ');
    return {
      name: name.length > 200 ? `${name.slice(0, 199)}…` : name,
      attributes: { repositories, root: blueprint.config.root } satisfies WorkingCopyResourceAttributes,
      slotLocks: [],
      activation: 'later',
    };
  },

  async activateResource(blueprint, resource, runtime) {
    const attributes = copyAttributes(resource);
    const host = await hostLease(blueprint, runtime);
    // A transition of the host lease updates this resource, so the long retry is only a backstop.
    if (host.status === 'PENDING' || host.status === 'ACQUIRED') return { status: 'wait', retryAfterMs: 60_000 };
    if (host.status !== 'ACTIVE') throw await hostFailure(blueprint, host, runtime);
    const path = copyPath(attributes.root, resource.id);
    await cloneCopy(hostCommands(runtime, host.id, timeoutOf(blueprint)), runtime, path, attributes.repositories);
    return { status: 'active', attributes: { path, hostLeaseId: host.id } };
  },

  async teardownResource(blueprint, resource, runtime) {
    const attributes = copyAttributes(resource);
    const owned = await runtime.leases.list();
    const host = owned.find((l) => l.id === attributes.hostLeaseId) ?? owned[0];
    // A host lease that was granted may have a (partial) copy on its host, even when it ended
    // before the copy did (its host was released first): remove it through the host all the same.
    if (host?.acquiredAt) {
      const path = copyPath(attributes.root, resource.id);
      if (attributes.path !== undefined && attributes.path !== path)
        throw new PermanentFailure(`the copy says it is at ${attributes.path}, not ${path}: not removing either`);
      await runtime.log(`removing ${path}`, { path });
      await hostCommands(runtime, host.id, timeoutOf(blueprint), { ended: true }).run(
        'remove',
        '.',
        git.removeDirectory(path),
      );
    } else if (host) {
      await runtime.log(`${describeHost(host)}: nothing to remove`, { hostLeaseId: host.id });
    }
    for (const lease of owned) await runtime.leases.release(lease.id);
  },

  async checkResource(_blueprint, resource, runtime) {
    const { hostLeaseId } = opened(copyAttributes(resource), resource.id);
    const host = (await runtime.leases.list()).find((l) => l.id === hostLeaseId);
    if (!host) throw new PermanentFailure(`host lease ${hostLeaseId} is gone: the copy has no host`);
    if (host.status !== 'ACTIVE') throw new PermanentFailure(`${describeHost(host)}: the copy has no host`);
  },

  async canAcquireLeaseOn(_blueprint, resource, lease) {
    const request = leaseRequest(lease);
    if (!request) return false;
    const { repositories } = copyAttributes(resource);
    const wanted = Object.entries(urlsOf(request));
    if (request.strict && wanted.length !== Object.keys(repositories).length) return false;
    return wanted.every(([directory, url]) => repositories[directory] === url);
  },

  acquireLease: (_blueprint, resource) => ({ slotLocks: [leaseSlotKey(resource.id)] }),

  async setupLease(blueprint, resource, lease, runtime) {
    const request = leaseRequest(lease);
    if (!request) throw new PermanentFailure(`lease ${lease.id} does not ask for a working copy`);
    const attributes = copyAttributes(resource);
    const { hostLeaseId, path } = opened(attributes, resource.id);
    const host = hostCommands(runtime, hostLeaseId, timeoutOf(blueprint));
    await prepareCopy(host, runtime, path, Object.keys(attributes.repositories), request);
    return { status: 'active' };
  },

  // A busy copy is exclusive: another lease is better served by a new copy, up to the limit.
  shouldAllocateSupplementalResource: () => true,

  leaseInterfaces(_blueprint, resource) {
    const attributes = copyAttributes(resource);
    const path = copyPath(attributes.root, resource.id);
    return {
      workingCopy: {
        path,
        hostLeaseId: attributes.hostLeaseId ?? null,
        repositories: Object.fromEntries(
          Object.entries(attributes.repositories).map(([directory, url]) => [
            directory,
            { url, path: repositoryPath(path, directory) },
          ]),
        ),
      },
    };
  },

  async leaseTransport(_blueprint, resource, _lease, runtime) {
    const { hostLeaseId, path } = opened(copyAttributes(resource), resource.id);
    const { transport } = await runtime.commands.transportOf(hostLeaseId);
    return { transport, cwd: path };
  },
});
