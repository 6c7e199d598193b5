import { getOperationAST, GraphQLError, Kind, type DocumentNode, type ExecutionResult } from 'graphql';
import { isAsyncIterable } from 'graphql-yoga';

type Result = ExecutionResult;
type Started = AsyncIterable<Result> | Result;

/**
 * Subscription fields that only stream what happens from now on: a subscriber joining a running
 * execution gets from then on exactly what its own would have sent.
 */
const LIVE_ONLY_FIELDS = new Set(['leasesChanged', 'resourcesChanged']);
/**
 * Per-object streams are live-only without `after`; with it they first replay from the
 * subscriber's own cursor, which a running execution has already passed.
 */
const LIVE_WITHOUT_AFTER_FIELDS = new Set(['leaseEvents', 'resourceEvents']);

/** Whether an operation may share its execution: a subscription of live-only fields. */
export function mayShare(
  document: DocumentNode,
  operationName: string | null | undefined,
  variables?: Readonly<Record<string, unknown>> | null,
): boolean {
  const operation = getOperationAST(document, operationName);
  if (operation?.operation !== 'subscription') return false;
  return operation.selectionSet.selections.every((selection) => {
    if (selection.kind !== 'Field') return false;
    if (LIVE_ONLY_FIELDS.has(selection.name.value)) return true;
    if (!LIVE_WITHOUT_AFTER_FIELDS.has(selection.name.value)) return false;
    const after = selection.arguments?.find((argument) => argument.name.value === 'after')?.value;
    if (!after || after.kind === Kind.NULL) return true;
    if (after.kind !== Kind.VARIABLE) return false;
    const name = after.name.value;
    if (variables && Object.hasOwn(variables, name)) return (variables[name] ?? null) === null;
    // Not given: the variable's default is the value, and a cursor there replays like a literal one.
    const fallback = operation.variableDefinitions?.find(
      (definition) => definition.variable.name.value === name,
    )?.defaultValue;
    return !fallback || fallback.kind === Kind.NULL;
  });
}

/** Writes one result, already serialized as the JSON of a graphql-ws `next` payload. */
export type SendSerialized = (payload: string) => void;

/** A member's results waiting to be taken; past this the member is ended rather than buffered. */
const MAX_WAITING = 256;

class Member implements AsyncIterableIterator<Result> {
  private readonly waiting: Result[] = [];
  private wake: { resolve: (value: IteratorResult<Result>) => void; reject: (error: unknown) => void } | null = null;
  private ended = false;
  /** Why the shared execution failed: thrown to this member once what waited is taken. */
  private failure: { error: unknown } | null = null;
  /** This member alone ended, as a result with the error (SlowSubscriber), then done. */
  private farewell: Result | null = null;

  constructor(
    private readonly leave: (member: Member) => void,
    private readonly send: SendSerialized | undefined,
  ) {}

  /** `serialized` gives the result's JSON, made once for the whole cohort. */
  push(result: Result, serialized: () => string): void {
    if (this.ended) return;
    if (this.send) {
      // Written straight to the socket, so nothing waits here; the socket's own bound applies.
      this.send(serialized());
    } else if (this.wake) {
      const { resolve } = this.wake;
      this.wake = null;
      resolve({ value: result, done: false });
    } else if (this.waiting.length < MAX_WAITING) {
      this.waiting.push(result);
    } else {
      this.dropSlow();
    }
  }

  /**
   * The shared execution ended: done, or with `failure` as it threw it. The failure is thrown to
   * the member as is, so that graphql-ws sends it as it would an execution of the member's own
   * (an `error` message with its extensions), not a result followed by `complete`.
   */
  end(failure?: { error: unknown }): void {
    if (this.ended) return;
    this.ended = true;
    this.failure = failure ?? null;
    if (this.wake && this.waiting.length === 0) this.settle(this.wake);
  }

  /**
   * Too far behind: what waited is dropped and the member gets one result with the error, then
   * done. Only this member ends; the execution goes on for the others.
   */
  private dropSlow(): void {
    const slow = new GraphQLError('This subscriber fell too far behind its events and was ended; subscribe again.');
    this.waiting.length = 0;
    this.farewell = { errors: [slow] };
    this.end();
    this.leave(this);
  }

  /** Hands an ended member's last word to a waiting next(): its farewell, its failure, or done. */
  private settle({ resolve, reject }: NonNullable<Member['wake']>): void {
    this.wake = null;
    const { farewell, failure } = this;
    this.farewell = null;
    this.failure = null;
    if (farewell) resolve({ value: farewell, done: false });
    else if (failure) reject(failure.error);
    else resolve({ value: undefined, done: true } as IteratorResult<Result>);
  }

  next(): Promise<IteratorResult<Result>> {
    const waiting = this.waiting.shift();
    if (waiting) return Promise.resolve({ value: waiting, done: false });
    return new Promise((resolve, reject) => {
      if (this.ended) this.settle({ resolve, reject });
      else this.wake = { resolve, reject };
    });
  }

  return(): Promise<IteratorResult<Result>> {
    this.waiting.length = 0;
    this.farewell = null;
    this.failure = null;
    this.end();
    if (this.wake) this.settle(this.wake);
    this.leave(this);
    return Promise.resolve({ value: undefined, done: true } as IteratorResult<Result>);
  }

  [Symbol.asyncIterator]() {
    return this;
  }
}

/**
 * One execution per cohort: subscribers with the same operation, variables and visibility key
 * (see visibilityKey) would each compute the same results for every event, so the first one's
 * execution runs and every member gets its results. The execution stops when its last member
 * leaves. A member that can write to its socket itself (`send`) gets each result serialized once
 * for the whole cohort; the others get the result objects through their iterator.
 */
export class Cohorts {
  private readonly running = new Map<string, { members: Set<Member>; stop: () => void }>();

  /** Members and executions running now (for tests and metrics). */
  get size(): { cohorts: number; members: number } {
    let members = 0;
    for (const cohort of this.running.values()) members += cohort.members.size;
    return { cohorts: this.running.size, members };
  }

  async join(key: string, start: () => Promise<Started> | Started, send?: SendSerialized): Promise<Started> {
    const running = this.running.get(key);
    if (running) return this.add(key, running.members, send);
    const started = await start();
    // Another subscriber of the same cohort may have started one while this one was starting.
    const raced = this.running.get(key);
    if (!isAsyncIterable(started)) return started;
    const iterator = started[Symbol.asyncIterator]();
    if (raced) {
      await iterator.return?.();
      return this.add(key, raced.members, send);
    }
    const members = new Set<Member>();
    this.running.set(key, { members, stop: () => void iterator.return?.() });
    const member = this.add(key, members, send);
    void this.pump(key, iterator, members);
    return member;
  }

  private add(key: string, members: Set<Member>, send: SendSerialized | undefined): Member {
    const member = new Member((left) => {
      members.delete(left);
      if (members.size === 0) {
        this.running.get(key)?.stop();
        this.running.delete(key);
      }
    }, send);
    members.add(member);
    return member;
  }

  private async pump(key: string, iterator: AsyncIterator<Result>, members: Set<Member>): Promise<void> {
    let failure: { error: unknown } | undefined;
    try {
      for (let next = await iterator.next(); !next.done; next = await iterator.next()) {
        const result = next.value;
        let json: string | undefined;
        const serialized = () => (json ??= JSON.stringify(result));
        for (const member of members) member.push(result, serialized);
        if (members.size === 0) break;
      }
    } catch (error) {
      // Already what Yoga's plugins (error masking) made of it: the same an unshared execution throws.
      failure = { error };
      // A failed iterator is finished, but the wrappers around it (Yoga's plugins' onEnd hooks)
      // learn that it ended only from return().
      await Promise.resolve(iterator.return?.()).catch(() => {});
    } finally {
      if (this.running.get(key)?.members === members) this.running.delete(key);
      for (const member of members) member.end(failure);
    }
  }
}
