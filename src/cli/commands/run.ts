import { CliLeaseDocument, CliRequestLeaseDocument, type RequestLeaseInput } from '../../generated/graphql/graphql.js';
import { RANGES, wholeNumber } from '../args.js';
import { execute } from '../client/http.js';
import { payloadOf } from '../client/payload.js';
import { subscriptionClient } from '../client/ws.js';
import { CliError, ExitCode, UsageError } from '../errors.js';
import { LEASE_REQUEST_FLAGS, leaseRequestFlags } from '../input/lease-request.js';
import { followLeases } from '../lease/follow.js';
import { keepAlive } from '../lease/heartbeat.js';
import { releaseRequested } from '../lease/release.js';
import { streamCommand } from '../lease/stream-command.js';
import { createProgress } from '../output/progress.js';
import { defineCommand } from './command.js';

export const runOnLeaseCommand = defineCommand({
  name: 'run',
  summary: 'lease a resource, run a command on it, release it',
  help: `
Usage: drydock run --type TYPE [--attributes FILE|-] [--blueprint ID]... [--heartbeat SECONDS]
                   [--timeout SECONDS] [--wait-timeout SECONDS] -- PROGRAM [ARGS...]

Requests a lease, waits until it is ACTIVE, runs PROGRAM with ARGS through it (as drydock command
does, with the lease's fence), and releases the lease however the command ends: its exit, a
failure, Ctrl-C or SIGTERM. The lease has a heartbeat, sent while this runs, so if this process
dies (even by kill -9) the server releases the lease by itself within that many seconds.

Exits with the command's exit code; 124 when it timed out, 255 when it has none, 130 when
interrupted, 1 when the lease could not be had.

Flags:
  --type TYPE          resource type wanted, e.g. host (required)
  --attributes FILE|-  JSON object of wanted attributes, from a file or "-" for stdin
  --blueprint ID       only these blueprints may serve it (repeatable)
  --heartbeat S        the lease's heartbeat in seconds, 1 to 3600 (default 30)
  --timeout S          kill the command after this long, 1 to 86400 (default 3600)
  --wait-timeout S     give up if the lease is still waiting after S seconds (1 to 2592000)

Example:
  drydock run --type host -- uname -sr`,
  options: {
    type: { type: 'string', short: 't' },
    attributes: { type: 'string' },
    blueprint: { type: 'string', multiple: true },
    heartbeat: { type: 'string' },
    timeout: { type: 'string' },
    'wait-timeout': { type: 'string' },
  },
  async run({ values, positionals }, context) {
    if (positionals.length === 0) throw new UsageError('give the command to run after --, e.g. -- uname -a');
    const heartbeatSeconds = wholeNumber('--heartbeat', values.heartbeat ?? '30', RANGES.heartbeatSeconds);
    const timeoutSeconds =
      values.timeout === undefined ? null : wholeNumber('--timeout', values.timeout, RANGES.commandTimeoutSeconds);
    const input: RequestLeaseInput = {
      ...(await leaseRequestFlags('run', values, [], context.io.stdin)),
      heartbeatSeconds,
      ...(values['wait-timeout'] !== undefined
        ? { waitTimeoutSeconds: wholeNumber('--wait-timeout', values['wait-timeout'], RANGES.waitTimeoutSeconds) }
        : {}),
    };
    // Never aborted, as in drydock lease: its answer says what to release.
    const result = await execute(context.connection, CliRequestLeaseDocument, { input });
    const { leases } = payloadOf(result.requestLease, 'RequestLeasePayload', LEASE_REQUEST_FLAGS);
    const lease = leases[0]!;
    context.note(`requested lease ${lease.databaseId} (${input.resourceType})`);
    const stopHeartbeat = keepAlive(context.connection, [lease.id], heartbeatSeconds);
    // Never retries: a reconnect would subscribe again, which would run the command a second time.
    const client = await subscriptionClient(context.connection, { retry: false });
    let held = leases;
    try {
      if (context.io.interrupted.aborted) return ExitCode.interrupted;
      const outcome = await followLeases(
        client,
        context.connection,
        leases,
        createProgress(context.io.stderr),
        context.io.interrupted,
      );
      held = outcome.leases;
      if (outcome.kind === 'interrupted') return ExitCode.interrupted;
      if (outcome.kind === 'failed')
        throw new CliError(`lease ${lease.databaseId} is ${outcome.lease.status}: ${outcome.reason}`);
      const active = (await execute(context.connection, CliLeaseDocument, { id: lease.id })).lease;
      if (!active || active.status !== 'ACTIVE') throw new CliError(`lease ${lease.databaseId} is no longer ACTIVE`);
      held = [active];
      context.note(`running on lease ${lease.databaseId} (fence ${active.fence ?? 'none'})`);
      return await streamCommand(
        client,
        context.connection,
        { leaseId: lease.id, argv: positionals, timeoutSeconds, fence: active.fence ?? null },
        context.io,
        context.note,
      );
    } finally {
      stopHeartbeat();
      await releaseRequested(context.connection, held, context.note);
      await client.dispose();
    }
  },
});
