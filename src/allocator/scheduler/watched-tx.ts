import type { Prisma } from '../../generated/prisma/client.js';
import type { Tx } from '../context.js';

/** A statement sent while the pass's transaction refuses them (see WatchedTx.withoutStatements). */
export class StatementRefused extends Error {
  constructor() {
    super('a try that was to read nothing from the database sent a statement');
  }
}

/**
 * A pass's transaction as its tries use it: it counts their statements, so that the pass knows
 * whether it has read anything since it last saw its type's capacity mark (pass.ts, markMoved),
 * and it can run a try that must send none. A try served wholly from what the pass has already
 * read (the common grant: a lease on a resource of a view kept from earlier in the pass) sees
 * nothing newer than that, so it needs no read of the mark before it; one that turns out to need
 * the database is refused at its first statement, before that statement is sent, and tried again
 * after the read.
 */
export class WatchedTx implements Tx {
  private sent = 0;
  private refusing = false;
  private refused = false;
  readonly $queryRawAndCommit?: <T = unknown>(query: Prisma.Sql) => Promise<T>;

  constructor(private readonly inner: Tx) {
    const andCommit = inner.$queryRawAndCommit?.bind(inner);
    if (andCommit)
      this.$queryRawAndCommit = <T>(query: Prisma.Sql) => {
        this.send();
        return andCommit<T>(query);
      };
  }

  /** Statements sent so far. */
  get statements(): number {
    return this.sent;
  }

  $queryRaw<T = unknown>(query: TemplateStringsArray | Prisma.Sql, ...values: unknown[]): Promise<T> {
    this.send();
    return this.inner.$queryRaw<T>(query, ...values);
  }

  $executeRaw(query: TemplateStringsArray | Prisma.Sql, ...values: unknown[]): Promise<number> {
    this.send();
    return this.inner.$executeRaw(query, ...values);
  }

  /**
   * Runs `fn` refusing every statement it sends: its result, or `refused` when it sent one (even
   * if something in it caught the refusal and went on). The refusal is thrown where the statement
   * would have been sent, so nothing it would have written reached the database.
   */
  async withoutStatements<T>(fn: () => Promise<T>): Promise<T | typeof REFUSED> {
    this.refusing = true;
    this.refused = false;
    try {
      const value = await fn();
      return this.refused ? REFUSED : value;
    } catch (error) {
      if (this.refused) return REFUSED;
      throw error;
    } finally {
      this.refusing = false;
    }
  }

  private send(): void {
    if (this.refusing) {
      this.refused = true;
      throw new StatementRefused();
    }
    this.sent += 1;
  }
}

export const REFUSED: unique symbol = Symbol('refused');
