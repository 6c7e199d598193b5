import {
  CliLeaseDocument,
  CliRequestLeaseDocument,
  type CliLeaseFragment,
  type RequestLeaseInput,
} from '../../generated/graphql/graphql.js';
import { RANGES, wholeNumber } from '../args.js';
import { execute, type Connection } from '../client/http.js';
import { payloadOf } from '../client/payload.js';
import { subscriptionClient } from '../client/ws.js';
import { CliError, ExitCode } from '../errors.js';
import { LEASE_REQUEST_FLAGS, leaseRequestFlags } from '../input/lease-request.js';
import { parseWhen } from '../input/when.js';
import { followLeases } from '../lease/follow.js';
import { releaseRequested } from '../lease/release.js';
import { activeLeaseReport } from '../output/format.js';
import { createProgress } from '../output/progress.js';
import { keepAlive } from '../lease/heartbeat.js';
import { defineCommand, type Context } from './command.js';

export const leaseCommand = defineCommand({
  name: 'lease',
  summary: 'request a lease and follow it live until it is ACTIVE',
  help: `
Usage: drydock lease --type TYPE [--attributes FILE|-] [--until WHEN] [--count N] [--blueprint ID]...
                     [--priority N] [--wait-timeout SECONDS] [--heartbeat SECONDS]

Requests a lease (or N identical ones), prints each entry of its log as it happens, and exits 0
once every lease is ACTIVE, printing the resource's connection details. Exits 1 with the reason
when a lease is BROKEN, RELEASED or DESTROYED instead (the others are then released). Ctrl-C
before ACTIVE releases what this command requested and exits 130.

With --heartbeat S the lease lives only while its holder shows it is alive: this command then
stays once the lease is ACTIVE, holding it (a heartbeat every S/3 seconds) until Ctrl-C or
SIGTERM, when it releases it and exits 0. If this process dies, the server releases the lease by
itself within S seconds.

Flags:
  --type TYPE          resource type wanted, e.g. host (required)
  --attributes FILE|-  JSON object of wanted attributes, from a file or "-" for stdin
  --until WHEN         release by itself after a duration (30m, 2h, 1d; at most 24855d) or at a
                       time (ISO-8601)
  --count N            request N identical leases, 1 to 100 (default 1)
  --blueprint ID       only these blueprints may serve it (repeatable)
  --priority N         -10 to 10 (default 0): served before lower ones; above 0 needs the right to
  --wait-timeout S     give up (the lease breaks) if it is still waiting after S seconds
                       (1 to 2592000, 30 days)
  --heartbeat S        hold the lease while this runs (1 to 3600 seconds, see above)

Examples:
  drydock lease --type host
  echo '{"platform":"linux"}' | drydock lease --type host --attributes - --until 2h --json`,
  options: {
    type: { type: 'string', short: 't' },
    attributes: { type: 'string' },
    until: { type: 'string' },
    count: { type: 'string' },
    blueprint: { type: 'string', multiple: true },
    priority: { type: 'string' },
    'wait-timeout': { type: 'string' },
    heartbeat: { type: 'string' },
  },
  async run({ values, positionals }, context) {
    const heartbeatSeconds =
      values.heartbeat === undefined
        ? undefined
        : wholeNumber('--heartbeat', values.heartbeat, RANGES.heartbeatSeconds);
    const input: RequestLeaseInput = {
      ...(await leaseRequestFlags('lease', values, positionals, context.io.stdin)),
      count: values.count === undefined ? 1 : wholeNumber('--count', values.count, RANGES.count),
      ...(values.until !== undefined ? parseWhen('--until', values.until) : {}),
      ...(values.priority !== undefined
        ? { priority: wholeNumber('--priority', values.priority, RANGES.priority) }
        : {}),
      ...(values['wait-timeout'] !== undefined
        ? { waitTimeoutSeconds: wholeNumber('--wait-timeout', values['wait-timeout'], RANGES.waitTimeoutSeconds) }
        : {}),
      ...(heartbeatSeconds !== undefined ? { heartbeatSeconds } : {}),
    };

    // Ctrl-C while the request is in flight must still release what it created, so the request
    // is never aborted: its answer says what to release.
    const result = await execute(context.connection, CliRequestLeaseDocument, { input });
    const { leases } = payloadOf(result.requestLease, 'RequestLeasePayload', LEASE_REQUEST_FLAGS);
    context.note(`requested ${leases.map((lease) => `lease ${lease.databaseId}`).join(', ')} (${input.resourceType})`);
    if (context.io.interrupted.aborted) {
      await releaseRequested(context.connection, leases, context.note);
      return ExitCode.interrupted;
    }

    const stopHeartbeat = heartbeatSeconds
      ? keepAlive(
          context.connection,
          leases.map((lease) => lease.id),
          heartbeatSeconds,
        )
      : () => {};
    const client = await subscriptionClient(context.connection);
    try {
      const progress = createProgress(context.io.stderr);
      const outcome = await followLeases(client, context.connection, leases, progress, context.io.interrupted).catch(
        async (error: unknown) => {
          await releaseRequested(context.connection, leases, context.note);
          throw error;
        },
      );
      // Re-read the leases over HTTP for the report: an event's lease may be as it was when the
      // subscription started, without its resource.
      const fresh = await refreshLeases(context.connection, outcome.leases);
      const undone = outcome.kind === 'active' ? fresh.find((lease) => lease.status !== 'ACTIVE') : undefined;
      if (undone) {
        await releaseRequested(context.connection, fresh, context.note);
        throw new CliError(`lease ${undone.databaseId} is ${undone.status}: ${undone.statusReason ?? 'it ended'}`);
      }
      switch (outcome.kind) {
        case 'active':
          if (context.json) context.printJson({ leases: fresh });
          else context.print(fresh.map(activeLeaseReport).join('\n\n'));
          if (heartbeatSeconds) return await hold(context, fresh);
          if (!context.json) {
            const ids = fresh.map((lease) => lease.databaseId).join(' ');
            context.note(`release with: drydock release-lease --id ${ids}`);
          }
          return ExitCode.ok;
        case 'interrupted':
          context.note('interrupted before ACTIVE');
          await releaseRequested(context.connection, fresh, context.note);
          return ExitCode.interrupted;
        case 'failed': {
          const failed = fresh.find((lease) => lease.id === outcome.lease.id) ?? outcome.lease;
          await releaseRequested(
            context.connection,
            fresh.filter((lease) => lease.id !== failed.id),
            context.note,
          );
          if (context.json) context.printJson({ leases: fresh, error: outcome.reason });
          throw new CliError(`lease ${failed.databaseId} is ${failed.status}: ${outcome.reason}`);
        }
      }
    } finally {
      stopHeartbeat();
      await client.dispose();
    }
  },
});

/** Holds heartbeat leases (keepAlive runs meanwhile) until Ctrl-C or SIGTERM, then releases them. */
async function hold(context: Context, leases: CliLeaseFragment[]): Promise<number> {
  const ids = leases.map((lease) => lease.databaseId).join(' ');
  context.note(`holding lease ${ids}; Ctrl-C or SIGTERM releases it`);
  const interrupted = context.io.interrupted;
  if (!interrupted.aborted)
    await new Promise((resolve) => interrupted.addEventListener('abort', resolve, { once: true }));
  await releaseRequested(context.connection, leases, context.note);
  return ExitCode.ok;
}

async function refreshLeases(connection: Connection, leases: CliLeaseFragment[]): Promise<CliLeaseFragment[]> {
  return Promise.all(
    leases.map(async (lease) => (await execute(connection, CliLeaseDocument, { id: lease.id })).lease ?? lease),
  );
}
