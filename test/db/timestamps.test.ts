import { describe, expect, it } from 'vitest';
import { utcTimestamp } from '../../src/db/timestamps.js';

// Timestamps are read through a memo of their text (src/db/timestamps.ts): the instant must be the
// text's, in a column's form and in JSON's, and no caller may see another's Date.

describe('a timestamp’s text read as UTC', () => {
  it('reads a column’s form and JSON’s form as the same instant', () => {
    expect(utcTimestamp('2026-12-07 01:50:46.123456').toISOString()).toBe('2026-12-07T01:50:46.123Z');
    expect(utcTimestamp('2026-12-07T01:50:46.123456').toISOString()).toBe('2026-12-07T01:50:46.123Z');
    expect(utcTimestamp('1999-01-02 03:04:05').toISOString()).toBe('1999-01-02T03:04:05.000Z');
  });

  it('gives every caller a Date of its own, read or read again', () => {
    const first = utcTimestamp('2026-01-01 00:00:00');
    first.setUTCFullYear(1970);
    const again = utcTimestamp('2026-01-01 00:00:00');
    expect(again).not.toBe(first);
    expect(again.toISOString()).toBe('2026-01-01T00:00:00.000Z');
  });

  it('reads text that is no date as an invalid Date, and every instant right past what it keeps', () => {
    expect(Number.isNaN(utcTimestamp('infinity').getTime())).toBe(true);
    const start = Date.UTC(2026, 0, 1);
    for (let i = 0; i < 25_000; i++) {
      const text = new Date(start + i * 1_001).toISOString().slice(0, 23).replace('T', ' ');
      expect(utcTimestamp(text).getTime()).toBe(start + i * 1_001);
    }
  });
});
