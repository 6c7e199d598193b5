import { describe, expect, it } from 'vitest';
import { Prisma } from '../../src/generated/prisma/client.js';
import type { Tx } from '../../src/allocator/context.js';
import { readOnly } from '../../src/db/statements.js';
import { MOVED, REFUSED, WatchedTx, type MarkCheck } from '../../src/allocator/scheduler/watched-tx.js';

const MARK_READ = Prisma.sql`SELECT mark`;

/** A transaction that records what reached it, and answers the mark read with `mark.now`. */
function recording(withCommit: boolean) {
  const sent: string[] = [];
  const mark = { now: 'm1' };
  const answer = (query: TemplateStringsArray | Prisma.Sql) => {
    const sql = (query as Prisma.Sql).sql;
    sent.push(sql);
    return sql === MARK_READ.sql ? [{ mark: mark.now }] : [{ sql }];
  };
  const tx: Tx = {
    $queryRaw: async <T>(query: TemplateStringsArray | Prisma.Sql) => answer(query) as T,
    $executeRaw: async (query: TemplateStringsArray | Prisma.Sql) => {
      answer(query);
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
  return { tx, sent, mark };
}

const check: MarkCheck = {
  read: MARK_READ,
  unchanged: (rows) => (rows as { mark: string }[])[0]?.mark === 'm1',
};

describe('a pass transaction that counts statements and keeps a try to confirmed reads', () => {
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

  it('sends a read with a read of the mark behind it, and gives the read its answer while the mark holds', async () => {
    const { tx, sent } = recording(false);
    const watched = new WatchedTx(tx);
    expect(await watched.tryFromReads(check, async () => 'from memory')).toBe('from memory');
    expect(sent).toEqual([]);
    const rows = await watched.tryFromReads(check, () => watched.$queryRaw(readOnly(Prisma.sql`SELECT 1`)));
    expect(rows).toEqual([{ sql: 'SELECT 1' }]);
    expect(sent).toEqual(['SELECT 1', 'SELECT mark']);
    expect(watched.statements).toBe(2);
  });

  it('stops the try when a read finds the mark moved', async () => {
    const { tx, mark } = recording(false);
    const watched = new WatchedTx(tx);
    mark.now = 'm2';
    const tried = await watched.tryFromReads(check, async () => {
      await watched.$queryRaw(readOnly(Prisma.sql`SELECT 1`));
      return 'granted';
    });
    expect(tried).toBe(MOVED);
  });

  it('refuses anything but a read before it is sent, even if the try catches the refusal', async () => {
    const { tx, sent } = recording(false);
    const watched = new WatchedTx(tx);
    expect(await watched.tryFromReads(check, () => watched.$queryRaw(Prisma.sql`SELECT 1 FOR UPDATE`))).toBe(REFUSED);
    const swallowed = await watched.tryFromReads(check, async () => {
      try {
        await watched.$executeRaw(Prisma.sql`UPDATE x SET y = 1`);
      } catch {
        // a hook that reports failures as values
      }
      // After a refusal nothing more is sent, reads included.
      await watched.$queryRaw(readOnly(Prisma.sql`SELECT 1`)).catch(() => {});
      return 'went on';
    });
    expect(swallowed).toBe(REFUSED);
    expect(sent).toEqual([]);
    expect(watched.statements).toBe(0);
    // Other failures are the try's own; after any of them, statements go through again.
    await expect(watched.tryFromReads(check, async () => Promise.reject(new Error('boom')))).rejects.toThrow('boom');
    await watched.$queryRaw(Prisma.sql`SELECT 3`);
    expect(sent).toEqual(['SELECT 3']);
  });
});
