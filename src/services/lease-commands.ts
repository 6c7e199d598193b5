import { z } from 'zod';
import type { AllocatorDeps } from '../allocator/context.js';
import { inTransaction } from '../allocator/transaction.js';
import { may } from '../access/policy.js';
import { conflict, illegalTransition, notFound } from '../domain-errors.js';
import { PermanentFailure } from '../failures.js';
import { writeLog } from '../allocator/logs.js';
import { fail, ok, type Result } from '../allocator/result.js';
import { noRuntimeTools } from '../allocator/runtime-tools.js';
import type { HostTransport, OutputStream } from '../transports/transport.js';
import type { Actor } from './actor.js';
import { commandStream, type LeaseCommandEvent } from './lease-command-stream.js';
import { fromZod, inputMessages } from './validation.js';

export type { LeaseCommandEvent } from './lease-command-stream.js';

export interface LeaseCommandRequest {
  leaseId: number;
  argv: string[];
  timeoutSeconds?: number | null;
  /** The fence the caller holds; the command is refused unless it is the lease's current one. */
  fence?: number | null;
}

export const DEFAULT_COMMAND_TIMEOUT_SECONDS = 3_600;
export const MAX_COMMAND_TIMEOUT_SECONDS = 86_400;
const MAX_ARGS = 1_000;
const MAX_ARGV_CHARACTERS = 128 * 1024;

const request = z.object({
  argv: z
    .array(z.string().refine((arg) => !arg.includes('\0'), 'arguments cannot contain NUL characters'))
    .min(1, 'give the command to run')
    .max(MAX_ARGS, `at most ${MAX_ARGS} arguments`)
    .refine((argv) => argv[0] !== '', { message: 'the program name is empty', path: [0] })
    .refine((argv) => argv.reduce((sum, arg) => sum + arg.length, 0) <= MAX_ARGV_CHARACTERS, {
      message: `the command is longer than ${MAX_ARGV_CHARACTERS} characters`,
    }),
  timeoutSeconds: z
    .number()
    .int()
    .min(1, 'timeoutSeconds must be at least 1')
    .max(MAX_COMMAND_TIMEOUT_SECONDS, `timeoutSeconds is at most ${MAX_COMMAND_TIMEOUT_SECONDS}`)
    .nullish(),
});

export interface LeaseCommandService {
  /**
   * Checks that the actor may run a command through the lease and opens its transport. The
   * command starts when the stream is first read, and is killed when the stream is closed early.
   */
  start(actor: Actor, input: LeaseCommandRequest): Promise<Result<AsyncIterableIterator<LeaseCommandEvent>>>;
}

export function leaseCommandService(deps: AllocatorDeps): LeaseCommandService {
  const { db } = deps;

  async function log(leaseId: number, entry: Parameters<typeof writeLog>[1]) {
    await inTransaction(deps, async (ctx) => {
      const lease = await ctx.tx.lease.findUniqueOrThrow({ where: { id: leaseId }, select: { status: true } });
      await writeLog(ctx, entry, { lease: lease.status });
    });
  }

  async function run(
    actor: Actor,
    leaseId: number,
    argv: string[],
    on: { transport: HostTransport; cwd: string | undefined; env: Record<string, string> },
    timeoutMs: number,
    emit: (stream: OutputStream, text: string) => void,
    signal: AbortSignal,
  ) {
    const started = Date.now();
    await log(leaseId, { type: 'lease-command-started', data: { argv, principalId: actor.principalId }, leaseId });
    let exitCode: number | null = null;
    let timedOut = false;
    try {
      ({ exitCode, timedOut } = await on.transport.run({
        argv,
        cwd: on.cwd,
        env: on.env,
        timeoutMs,
        signal,
        onOutput: emit,
      }));
    } catch (error) {
      emit('stderr', `drydock: the command could not run: ${error instanceof Error ? error.message : String(error)}\n`);
    }
    const durationMs = Date.now() - started;
    await log(leaseId, { type: 'lease-command-finished', data: { argv, exitCode, timedOut, durationMs }, leaseId });
    return { exitCode, timedOut };
  }

  /** Why the lease's resource cannot run commands, naming the lease and the resource. */
  async function cannotRun(lease: { id: number; resourceId: number | null }, reason: string): Promise<string> {
    const resource =
      lease.resourceId === null
        ? null
        : await db.prisma.resource.findUnique({ where: { id: lease.resourceId }, select: { type: true, name: true } });
    const where = resource ? `${resource.type} ${resource.name}` : 'resource';
    return `lease ${lease.id}'s ${where} cannot run commands: ${reason}`;
  }

  return {
    async start(actor, input) {
      const parsed = request.safeParse(input, inputMessages);
      if (!parsed.success) return fail(fromZod(parsed.error));
      const { argv, timeoutSeconds } = parsed.data;
      const lease = await db.prisma.lease.findUnique({ where: { id: input.leaseId } });
      if (!lease) return fail(notFound('lease', input.leaseId));
      const refused = may(actor, { kind: 'lease.runCommand', lease });
      if (refused) return fail(refused);
      if (input.fence !== null && input.fence !== undefined && input.fence !== lease.fence) {
        return fail(
          conflict(
            `fence ${input.fence} of lease ${lease.id} is stale: the lease's current fence is ${lease.fence ?? 'none'} (it was handed off or granted again)`,
          ),
        );
      }
      if (lease.status !== 'ACTIVE') {
        return fail(
          illegalTransition(
            'lease',
            lease.id,
            lease.status,
            'ACTIVE',
            `lease ${lease.id} is ${lease.status}; commands run only through ACTIVE leases`,
          ),
        );
      }
      const commands = (deps.tools ?? noRuntimeTools()).commands;
      let opened;
      try {
        opened = await commands.transportOf(lease.id);
      } catch (error) {
        // The lease's resource cannot run commands as it is (no transport, local disabled,
        // credential revoked): a state of the resource, not a bad leaseId (which is fine).
        if (error instanceof PermanentFailure) return fail(conflict(await cannotRun(lease, error.message)));
        throw error;
      }
      const { transport, cwd } = opened;
      const timeoutMs = (timeoutSeconds ?? DEFAULT_COMMAND_TIMEOUT_SECONDS) * 1_000;
      // What the command can hand on to a device or agent to check it still holds the resource.
      const env = { DRYDOCK_LEASE_ID: String(lease.id), DRYDOCK_LEASE_FENCE: String(lease.fence ?? '') };
      return ok(
        commandStream((emit, signal) => run(actor, lease.id, argv, { transport, cwd, env }, timeoutMs, emit, signal)),
      );
    },
  };
}
