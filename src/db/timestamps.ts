// PostgreSQL's `timestamp` columns hold UTC without a zone (as Prisma writes them). Their text
// comes back as '2026-12-07 01:50:46.123456' from a column and with a 'T' inside JSON (to_jsonb).
//
// Why a memo: the same timestamps come back over and over (a pool's resources in every scheduling
// pass, a lease's in each of its statements and events), and parsing date text costs several
// times a lookup. It holds numbers, never Dates: every caller gets a Date of its own.
const epochs = new Map<string, number>();
/** Cleared when full: what a pass or an event reads again is back after one parse. */
const MAX_KEPT = 10_000;

/** The UTC instant of a `timestamp`'s text, in either form (Invalid Date for text that is none). */
export function utcTimestamp(text: string): Date {
  let ms = epochs.get(text);
  if (ms === undefined) {
    ms = Date.parse(`${text.replace(' ', 'T')}Z`);
    if (epochs.size >= MAX_KEPT) epochs.clear();
    epochs.set(text, ms);
  }
  return new Date(ms);
}
