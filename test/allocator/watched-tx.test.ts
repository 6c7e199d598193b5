import { describe, expect, it } from 'vitest';
import { Prisma } from '../../src/generated/prisma/client.js';
import type { Tx } from '../../src/allocator/context.js';
import { REFUSED, WatchedTx } from '../../src/allocator/scheduler/watched-tx.js';

/** A transaction that records what reached it. */
function recording(withCommit: boolean) {
  const sent: string[] = [];
  const tx: Tx = {
    $queryRaw: async <T>(query: TemplateStringsArray | Prisma.Sql) => {
      sent.push((query as Prisma.Sql).sql);
      return [] as T;
    },
    $executeRaw: async (query: TemplateStringsArray | Prisma.Sql) => {
      sent.push((query as Prisma.Sql).sql);
      return 0;
    },
    ...(withCommit
      ? {
          $queryRawAndCommit: async <T>(query: Prisma.Sql) => {
            sent.push(`${query.sql}; COMMIT`);
            return [] as T;
          },
        }
      : {}),
  };
  return { tx, sent };
}

describe('a pass transaction that counts and can refuse statements', () => {
  it('counts what it passes on, and offers the commit only where the transaction has it', async () => {
    const plain = recording(false);
    const watched = new WatchedTx(plain.tx);
    await watched.$queryRaw(Prisma.sql`SELECT 1`);
    await watched.$executeRaw(Prisma.sql`UPDATE x SET y = 1`);
    expect(watched.statements).toBe(2);
    expect(plain.sent).toEqual(['SELECT 1', 'UPDATE x SET y = 1']);
    expect(watched.$queryRawAndCommit).toBeUndefined();
    const committing = recording(true);
    const last = new WatchedTx(committing.tx);
    await last.$queryRawAndCommit!(Prisma.sql`SELECT 2`);
    expect(last.statements).toBe(1);
    expect(committing.sent).toEqual(['SELECT 2; COMMIT']);
  });

  it("refuses a try's statement before it is sent, even if the try catches the refusal", async () => {
    const { tx, sent } = recording(false);
    const watched = new WatchedTx(tx);
    expect(await watched.withoutStatements(async () => 'from memory')).toBe('from memory');
    expect(await watched.withoutStatements(() => watched.$queryRaw(Prisma.sql`SELECT 1`))).toBe(REFUSED);
    const swallowed = await watched.withoutStatements(async () => {
      try {
        await watched.$executeRaw(Prisma.sql`UPDATE x SET y = 1`);
      } catch {
        // a hook that reports failures as values
      }
      return 'went on';
    });
    expect(swallowed).toBe(REFUSED);
    expect(sent).toEqual([]);
    expect(watched.statements).toBe(0);
    // Other failures are the try's own; after any of them, statements go through again.
    await expect(watched.withoutStatements(async () => Promise.reject(new Error('boom')))).rejects.toThrow('boom');
    await watched.$queryRaw(Prisma.sql`SELECT 3`);
    expect(sent).toEqual(['SELECT 3']);
  });
});
