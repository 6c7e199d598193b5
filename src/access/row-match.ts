// A Prisma where evaluated on a row already in memory, for the few rules simple enough: equality
// on the row's own columns, `in`, AND, OR. It exists so that an in-memory check is the policy's
// rule itself rather than a second copy of it; a rule that grows beyond this (a relation, say)
// throws here instead of being answered wrongly, and its caller must then read through the
// database. Hand-written because the libraries that evaluate Prisma wheres in memory are mocks
// meant for tests, and this needs thirty lines.

type Row = Record<string, unknown>;

const same = (a: unknown, b: unknown) =>
  typeof a === 'bigint' || typeof b === 'bigint' ? String(a) === String(b) : a === b;

function cannot(where: unknown): never {
  throw new Error(`row-match cannot evaluate ${JSON.stringify(where)} in memory`);
}

/** Whether `row` satisfies `where`, for the subset described above. */
export function rowMatches(where: object, row: Row): boolean {
  return Object.entries(where).every(([key, condition]: [string, unknown]) => {
    if (key === 'AND' || key === 'OR') {
      const parts: unknown[] = Array.isArray(condition) ? condition : [condition];
      const test = (part: unknown) =>
        typeof part === 'object' && part !== null ? rowMatches(part, row) : cannot(part);
      return key === 'AND' ? parts.every(test) : parts.some(test);
    }
    if (!(key in row)) cannot(where);
    const value = row[key];
    if (condition === null || typeof condition !== 'object') return same(value, condition);
    const entries = Object.entries(condition);
    if (entries.length === 1 && entries[0]![0] === 'in' && Array.isArray(entries[0]![1])) {
      return (entries[0]![1] as unknown[]).some((option) => same(value, option));
    }
    return cannot(where);
  });
}
