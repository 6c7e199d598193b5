import { errorTypeMap, wrapErrorIfMatches } from '@pothos/plugin-errors';
import type { LeaseCommandEvent } from '../services/lease-commands.js';
import { builder } from './builder.js';
import {
  ConflictProblem,
  IllegalTransitionProblem,
  NotAuthorizedProblem,
  NotFoundProblem,
  toProblem,
  ValidationProblem,
  valueOrFieldError,
} from './errors.js';
import { databaseId } from './ids.js';
import { LeaseNode } from './lease.js';

type Output = Extract<LeaseCommandEvent, { kind: 'output' }>;
type Exit = Extract<LeaseCommandEvent, { kind: 'exit' }>;

const CommandOutputStreamEnum = builder.enumType('CommandOutputStream', { values: ['STDOUT', 'STDERR'] as const });

const LeaseCommandOutputRef = builder.objectRef<Output>('LeaseCommandOutput').implement({
  description: "A piece of the running command's output, as it arrived (not necessarily whole lines).",
  fields: (t) => ({
    stream: t.field({
      type: CommandOutputStreamEnum,
      resolve: (event) => (event.stream === 'stdout' ? 'STDOUT' : 'STDERR'),
    }),
    text: t.exposeString('text'),
  }),
});

const LeaseCommandExitRef = builder.objectRef<Exit>('LeaseCommandExit').implement({
  description: 'The last event of a command.',
  fields: (t) => ({
    exitCode: t.exposeInt('exitCode', {
      nullable: true,
      description: 'null when the command was killed (timeout) or the host could not be reached.',
    }),
    timedOut: t.exposeBoolean('timedOut'),
  }),
});

const errorTypes = [
  ValidationProblem,
  NotFoundProblem,
  NotAuthorizedProblem,
  IllegalTransitionProblem,
  ConflictProblem,
] as const;
const errorNames = new Map<object, string>([
  [ValidationProblem, 'ValidationError'],
  [NotFoundProblem, 'NotFoundError'],
  [NotAuthorizedProblem, 'NotAuthorizedError'],
  [IllegalTransitionProblem, 'IllegalTransitionError'],
  [ConflictProblem, 'ConflictError'],
]);

const RunLeaseCommandEventRef = builder.unionType('RunLeaseCommandEvent', {
  description: 'Output as it comes, then one LeaseCommandExit; or a single error when the command cannot start.',
  types: [LeaseCommandOutputRef, LeaseCommandExitRef, ...errorTypes],
  resolveType: (event) => {
    const errorType = errorTypeMap.get(event);
    if (errorType) return errorNames.get(errorType) ?? 'ValidationError';
    return (event as Output | Exit).kind === 'output' ? 'LeaseCommandOutput' : 'LeaseCommandExit';
  },
});

type RunEvent = LeaseCommandEvent | Error;

async function* once(error: Error): AsyncGenerator<RunEvent> {
  yield error;
}

builder.subscriptionField('runLeaseCommand', (t) =>
  t.field({
    type: RunLeaseCommandEventRef,
    description:
      "Runs a command through an ACTIVE lease's transport (its owner or an admin) and streams its output. Unsubscribing kills the command. Each run is recorded in the lease's log.",
    args: {
      leaseId: t.arg.globalID({ required: true, for: LeaseNode }),
      argv: t.arg.stringList({ required: true, description: 'The program and its arguments; no shell reads them.' }),
      timeoutSeconds: t.arg.int({ description: 'Kill the command after this long (default 3600, at most 86400).' }),
      fence: t.arg.int({
        description:
          "The lease's fence as the caller knows it: the command is refused (ConflictError) unless it is still the lease's current one. The command sees it as DRYDOCK_LEASE_FENCE.",
      }),
    },
    subscribe: async (_root, args, ctx): Promise<AsyncIterable<RunEvent>> => {
      const started = await ctx.services.leaseCommands.start(ctx.actor, {
        leaseId: databaseId(args.leaseId) ?? 0,
        argv: args.argv,
        timeoutSeconds: args.timeoutSeconds,
        fence: args.fence,
      });
      return started.ok ? started.value : once(toProblem(started.error));
    },
    // graphql-js treats an Error returned by a resolver as thrown; the errors plugin's wrapper
    // makes it a value of its GraphQL type instead, as it does for mutations.
    resolve: (event: RunEvent) =>
      (event instanceof Error ? wrapErrorIfMatches(event, [...errorTypes]) : event) as RunEvent,
  }),
);

builder.prismaObjectField(LeaseNode, 'interfaces', (t) =>
  t.field({
    type: 'JSON',
    description:
      'What the lease offers its owner once ACTIVE, e.g. {"ssh": {"host", "port"}, "transport": {"kind", "address", "port", "user"}}; never a secret. {} otherwise.',
    resolve: async (lease, _args, ctx) => valueOrFieldError(await ctx.services.leases.interfaces(ctx.actor, lease.id)),
  }),
);
