import { CliLeaseCandidatesDocument, type LeaseCandidatesInput } from '../../generated/graphql/graphql.js';
import { execute } from '../client/http.js';
import { payloadOf } from '../client/payload.js';
import { ExitCode } from '../errors.js';
import { LEASE_REQUEST_FLAGS, leaseRequestFlags } from '../input/lease-request.js';
import { defineCommand } from './command.js';

export const candidatesCommand = defineCommand({
  name: 'candidates',
  summary: 'dry run: which blueprints and resources would serve a lease, and why not the others',
  help: `
Usage: drydock candidates --type TYPE [--attributes FILE|-] [--blueprint ID]...

Asks the server what a "drydock lease" with the same flags would get, creating nothing: each
blueprint of the type with the reason it would not serve the lease (an attribute no binding has,
a missing authorization, disabled, ...) or could not build a new resource now (at its resource
limit, ...), and each of its resources with whether the lease could be acquired on it now (not
when it is draining, or a slot it needs is held). A lease that would wait whatever they offer
(you are at your quota of the type) says so. The same rules as the scheduler's, so it answers as
the lease would be served now. Exits 0 when the lease would be served, 1 when it would not.

Flags:
  --type TYPE          resource type wanted, e.g. host (required)
  --attributes FILE|-  JSON object of wanted attributes, from a file or "-" for stdin
  --blueprint ID       only these blueprints (repeatable)

Example:
  echo '{"platform":"linux"}' | drydock candidates --type host --attributes -`,
  options: {
    type: { type: 'string', short: 't' },
    attributes: { type: 'string' },
    blueprint: { type: 'string', multiple: true },
  },
  async run({ values, positionals }, context) {
    const input: LeaseCandidatesInput = await leaseRequestFlags('candidates', values, positionals, context.io.stdin);
    const { leaseCandidates } = await execute(context.connection, CliLeaseCandidatesDocument, { input });
    const result = payloadOf(leaseCandidates, 'LeaseCandidatesPayload', LEASE_REQUEST_FLAGS);
    const code = result.wouldBeServed ? ExitCode.ok : ExitCode.failed;
    if (context.json) {
      context.printJson(result);
      return code;
    }
    if (result.blueprints.length === 0 && result.unseenBlueprints === 0) {
      context.print(`no blueprint yields "${values.type}"`);
    }
    for (const b of result.blueprints) {
      const build = b.canAllocateNow
        ? ', can build a new resource now'
        : `, cannot build a new resource now${b.cannotAllocateNowReason ? ` (${b.cannotAllocateNowReason})` : ''}`;
      const verdict = b.usable ? `usable${build}` : `not usable: ${b.reason}`;
      context.print(
        `blueprint ${b.blueprintDatabaseId} (${b.blueprint ? `${b.blueprint.name}, ${b.blueprint.implementation}` : 'not visible to you'}): ${verdict}`,
      );
      for (const r of b.resources) {
        const held = r.holders.map((h) => h.key).join(', ');
        context.print(
          `  resource ${r.resourceDatabaseId}: ${r.usable ? 'would take the lease now' : r.reason}${held ? ` (held: ${held})` : ''}`,
        );
      }
    }
    if (result.unseenBlueprints > 0) {
      const some = result.unseenBlueprints === 1 ? '1 blueprint' : `${result.unseenBlueprints} blueprints`;
      context.print(
        `${some} you may not see (not authorized on) ${result.unseenBlueprints === 1 ? 'yields' : 'yield'} "${values.type}"`,
      );
    }
    context.print(
      result.wouldBeServed
        ? 'the lease would be served'
        : `the lease would not be served now${result.blocker ? `: ${result.blocker.message}` : ''}`,
    );
    return code;
  },
});
