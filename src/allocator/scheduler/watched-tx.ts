import { Prisma } from '../../generated/prisma/client.js';
import { isReadOnly } from '../../db/statements.js';
import type { Tx } from '../context.js';

/** A try that was to send no statement but reads sent one (see WatchedTx.tryFromReads). */
export class StatementRefused extends Error {
  constructor() {
    super('a try kept from the database sent a statement that does not only read');
  }
}

/** A read a try sent found the type's capacity mark moved (see WatchedTx.tryFromReads). */
export class MarkMoved extends Error {
  constructor() {
    super("the type's capacity mark moved while a try read the pool");
  }
}

export const REFUSED: unique symbol = Symbol('refused');
export const MOVED: unique symbol = Symbol('moved');

/** The statement that reads the capacity mark, and whether its answer is the mark the pass expects. */
export interface MarkCheck {
  read: Prisma.Sql;
  unchanged(rows: unknown): boolean;
}

/**
 * A pass's transaction as its tries use it. It counts their statements, so that the pass knows
 * whether it has read anything since it last saw its type's capacity mark (in-order.ts, markMoved);
 * and it runs a try kept from the database but for reads, each sent with a read of the mark behind
 * it, in the same round trip (tryFromReads).
 *
 * Why that is enough: a try served from what the pass has already read (the common grant, a lease
 * on a resource of a view kept from earlier in the pass) sees nothing newer than that. A read it
 * sends may see capacity freed since; the mark read after it, unchanged, says none was. A statement
 * that does more than read is refused before it is sent: the try changed nothing in the database,
 * and the pass reads the mark before trying it again as usual.
 */
export class WatchedTx implements Tx {
  private sent = 0;
  private check: MarkCheck | null = null;
  /** The savepoint to take before the next statement that does more than read (see beforeWrites). */
  private savepoint: string | null = null;
  private outcome: typeof REFUSED | typeof MOVED | null = null;
  readonly $queryRawAndCommit?: <T = unknown>(query: Prisma.Sql) => Promise<T>;

  constructor(private readonly inner: Tx) {
    const andCommit = inner.$queryRawAndCommit?.bind(inner);
    if (andCommit)
      this.$queryRawAndCommit = <T>(query: Prisma.Sql) => {
        this.refuseIfChecking();
        this.takeSavepoint();
        this.sent += 1;
        return andCommit<T>(query);
      };
  }

  /** Statements sent so far. */
  get statements(): number {
    return this.sent;
  }

  $queryRaw<T = unknown>(query: TemplateStringsArray | Prisma.Sql, ...values: unknown[]): Promise<T> {
    const check = this.check;
    const reads = isReadOnly(query);
    if (check === null || this.outcome !== null || !reads) {
      this.refuseIfChecking();
      if (!reads) this.takeSavepoint();
      this.sent += 1;
      return this.inner.$queryRaw<T>(query, ...values);
    }
    // Sent in one write, answered in order: the mark is read after the statement ran.
    const rows = this.inner.$queryRaw<T>(query, ...values);
    const mark = this.inner.$queryRaw(check.read);
    this.sent += 2;
    return Promise.all([rows, mark]).then(([answer, marked]) => {
      if (check.unchanged(marked)) return answer;
      this.outcome ??= MOVED;
      throw new MarkMoved();
    });
  }

  $executeRaw(query: TemplateStringsArray | Prisma.Sql, ...values: unknown[]): Promise<number> {
    this.refuseIfChecking();
    this.takeSavepoint();
    this.sent += 1;
    return this.inner.$executeRaw(query, ...values);
  }

  /**
   * Runs `fn` sending only reads, each confirmed by `check` (see above): its result, once every
   * read found the mark unchanged; MOVED when one found it moved; REFUSED when it would have sent
   * anything else. Either stands even if something in `fn` caught the error and went on.
   */
  async tryFromReads<T>(check: MarkCheck, fn: () => Promise<T>): Promise<T | typeof REFUSED | typeof MOVED> {
    this.check = check;
    this.outcome = null;
    try {
      const value = await fn();
      return this.outcome ?? value;
    } catch (error) {
      if (this.outcome !== null) return this.outcome;
      throw error;
    } finally {
      this.check = null;
    }
  }

  /**
   * Runs `fn`, taking the savepoint `name` just before the first statement it sends that does more
   * than read, in the same round trip: whether it took it (the caller then releases it or rolls
   * back to it). A try that only reads, or plans what the pass writes later, costs nothing more.
   */
  async beforeWrites<T>(name: string, fn: () => Promise<T>): Promise<{ value: T; savepoint: boolean }> {
    this.savepoint = name;
    try {
      const value = await fn();
      return { value, savepoint: this.savepoint === null };
    } finally {
      this.savepoint = null;
    }
  }

  private takeSavepoint(): void {
    const name = this.savepoint;
    if (name === null) return;
    this.savepoint = null;
    // Not awaited: it goes out ahead of the statement that follows and is answered first; an
    // error of its own fails that statement's transaction too.
    this.sent += 1;
    void this.inner.$executeRaw(Prisma.raw(`SAVEPOINT ${name}`)).catch(() => undefined);
  }

  private refuseIfChecking(): void {
    if (this.check === null) return;
    this.outcome ??= REFUSED;
    throw new StatementRefused();
  }
}
