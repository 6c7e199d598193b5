import { findResource, loadBlueprint } from './blueprints.js';
import { PermanentFailure } from '../failures.js';
import type { BlueprintRuntime, CommandRunner } from '../blueprints/implementation.js';
import type { BlueprintRegistry } from '../blueprints/registry.js';
import type { Database } from '../db/database.js';

export interface CommandRunnerOptions {
  db: Database;
  registry: BlueprintRegistry;
  /** Late-bound: the runtime itself holds this runner, so it cannot exist before it. */
  runtime: () => BlueprintRuntime;
}

/**
 * Commands through what a lease's resource offers (a host's transport, a working copy's host in
 * its directory). Reads only: the lease is not locked, so a lease released meanwhile still runs
 * the command it was asked for before, as a shell already open on a host would.
 */
export function createCommandRunner(options: CommandRunnerOptions): CommandRunner {
  const { db, registry } = options;
  const runner: CommandRunner = {
    async transportOf(leaseId, runOptions) {
      const lease = await db.prisma.lease.findUnique({ where: { id: leaseId } });
      if (!lease) throw new PermanentFailure(`lease ${leaseId} does not exist`);
      const usable = lease.status === 'ACTIVE' || (runOptions?.ended === true && lease.acquiredAt !== null);
      if (!usable || lease.resourceId === null) {
        throw new PermanentFailure(`lease ${leaseId} is ${lease.status}; commands run only through ACTIVE leases`);
      }
      const resource = await findResource(db.prisma, lease.resourceId);
      if (!resource) throw new PermanentFailure(`resource ${lease.resourceId} of lease ${leaseId} does not exist`);
      const loaded = await loadBlueprint(db.prisma, registry, resource.blueprintId);
      if (!loaded) {
        throw new PermanentFailure(
          `blueprint ${resource.blueprintId} of resource ${resource.id} cannot be used here (unknown implementation or invalid config)`,
        );
      }
      const { blueprint, implementation } = loaded;
      if (!implementation.leaseTransport) {
        throw new PermanentFailure(`leases on ${resource.type} resources offer no command transport`);
      }
      return implementation.leaseTransport(blueprint, resource, lease, options.runtime());
    },
    async run(leaseId, spec, runOptions) {
      const { transport, cwd } = await runner.transportOf(leaseId, runOptions);
      return transport.run({ ...spec, cwd: spec.cwd ?? cwd });
    },
  };
  return runner;
}
