// A log entry's cursor: the position clients resume the event streams from.

const MAX_LOG_ID = 9_223_372_036_854_775_807n;

/** Parses a log cursor; null when it is not one. */
export function parseCursor(cursor: string | null | undefined): bigint | null {
  if (cursor === null || cursor === undefined) return null;
  if (!/^\d{1,19}$/.test(cursor)) return null;
  // Log ids are PostgreSQL bigints: 19 digits can still be past the largest.
  const value = BigInt(cursor);
  return value <= MAX_LOG_ID ? value : null;
}
