import { join } from 'node:path';
import type { Blueprint, Resource, ResourceStatus } from '../../src/generated/prisma/client.js';
import { authorizeBlueprintOn, unwrap, type Harness } from '../support/allocator-harness.js';

// The blueprints of a working-copy test: a host pool of one host (this machine, over the local
// transport) and a working-copy blueprint authorized on it through its principal, as an
// operator would set them up.

export interface WorkingCopyStack {
  hosts: Blueprint;
  copies: Blueprint;
  /** The copies' root on the host. */
  root: string;
}

let stacks = 0;

export async function createWorkingCopyStack(
  h: Harness,
  parent: string,
  options: { resourceLimit?: number } = {},
): Promise<WorkingCopyStack> {
  const root = join(parent, `copies-${++stacks}`);
  const hosts = unwrap(
    await h.services.blueprints.create(h.system, {
      name: 'hosts',
      implementation: 'host-pool',
      config: {
        services: [
          {
            name: 'local',
            bindings: [{ name: 'here', address: '127.0.0.1', port: 22, transport: { kind: 'local' } }],
          },
        ],
      },
    }),
  );
  const copies = unwrap(
    await h.services.blueprints.create(h.system, {
      name: 'copies',
      implementation: 'working-copy',
      config: { root, host: { blueprintIds: [hosts.id] } },
      ...(options.resourceLimit ? { resourceLimit: options.resourceLimit } : {}),
    }),
  );
  await authorizeBlueprintOn(h, copies.id, hosts.id);
  return { hosts, copies, root };
}

/** Resolves once the resource is in one of `statuses` (checked on every event about it). */
export const waitForResource = (h: Harness, resourceId: number, statuses: ResourceStatus[], timeoutMs = 30_000) =>
  waitForResourceWhere(h, { id: resourceId }, statuses, timeoutMs);

/** The blueprint's first resource in one of `statuses`, once there is one. */
export const waitForResourceOf = (h: Harness, blueprintId: number, statuses: ResourceStatus[], timeoutMs = 30_000) =>
  waitForResourceWhere(h, { blueprintId }, statuses, timeoutMs);

function waitForResourceWhere(
  h: Harness,
  where: { id: number } | { blueprintId: number },
  statuses: ResourceStatus[],
  timeoutMs: number,
): Promise<Resource> {
  const concerns = (event: { resourceId: number; blueprintId: number }) =>
    'id' in where ? event.resourceId === where.id : event.blueprintId === where.blueprintId;
  return new Promise<Resource>((resolve, reject) => {
    let settled = false;
    const check = async () => {
      const resource = await h.db.prisma.resource.findFirst({
        where: { ...where, status: { in: statuses } },
        orderBy: { id: 'asc' },
      });
      if (settled || !resource) return;
      settled = true;
      cleanup();
      resolve(resource);
    };
    const unsubscribe = h.events.subscribe((event) => {
      if (event.kind === 'resource' && concerns(event)) void check().catch(reject);
    });
    const timer = setTimeout(async () => {
      cleanup();
      const logs = await h.db.prisma.log.findMany({ where: { resource: where }, orderBy: { id: 'asc' } });
      reject(
        new Error(
          `no resource ${JSON.stringify(where)} is ${statuses.join('/')} after ${timeoutMs} ms; log: ${logs.map((l) => `${l.type} ${JSON.stringify(l.data)}`).join(' | ')}`,
        ),
      );
    }, timeoutMs);
    const cleanup = () => {
      clearTimeout(timer);
      unsubscribe();
    };
    void check().catch(reject);
  });
}
