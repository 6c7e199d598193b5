// leaseVisible is visibleWhere's Lease rule evaluated on a row in memory, not a copy of it: these
// check the evaluation agrees with the rule for every kind of actor, and that a rule it could not
// evaluate (a relation) is refused loudly rather than answered wrongly.
import { describe, expect, it } from 'vitest';
import type { Actor } from '../src/access/actor.js';
import { leaseVisible, visibleWhere } from '../src/access/policy.js';
import { rowMatches } from '../src/access/row-match.js';

const actor = (principalId: number, principalIsAdmin: boolean, scopes: Actor['scopes']): Actor => ({
  principalId,
  name: `p${principalId}`,
  principalIsAdmin,
  scopes,
});

describe('leaseVisible', () => {
  const mine = { id: 1, ownerId: 7 };
  const theirs = { id: 2, ownerId: 8 };
  const nobodys = { id: 3, ownerId: null };

  it.each([
    ['an admin', actor(1, true, ['ADMIN']), [true, true, true]],
    ['an admin principal through a READ token', actor(7, true, ['READ']), [true, false, false]],
    ['the owner with READ', actor(7, false, ['READ']), [true, false, false]],
    ['the owner with LEASE', actor(7, false, ['LEASE']), [true, false, false]],
    ['the owner with no scope', actor(7, false, []), [false, false, false]],
    ['another principal', actor(9, false, ['READ', 'LEASE']), [false, false, false]],
  ] as const)('answers as the Lease rule does for %s', (_name, who, expected) => {
    expect([mine, theirs, nobodys].map((lease) => leaseVisible(who, lease))).toEqual(expected);
  });
});

describe('rowMatches', () => {
  it('evaluates equality, in, AND and OR on the row', () => {
    const row = { id: 4, ownerId: 7, status: 'ACTIVE' };
    expect(rowMatches({}, row)).toBe(true);
    expect(rowMatches({ id: { in: [] } }, row)).toBe(false);
    expect(rowMatches({ id: { in: [3, 4] } }, row)).toBe(true);
    expect(rowMatches({ AND: [{ ownerId: 7 }, { status: 'ACTIVE' }] }, row)).toBe(true);
    expect(rowMatches({ OR: [{ ownerId: 8 }, { status: 'RELEASED' }] }, row)).toBe(false);
  });

  it('refuses what it cannot evaluate instead of answering', () => {
    expect(() => rowMatches(visibleWhere(actor(7, false, ['READ']), 'Resource'), { id: 1 })).toThrow(/cannot evaluate/);
    expect(() => rowMatches({ ownerId: { gt: 3 } }, { ownerId: 7 })).toThrow(/cannot evaluate/);
    expect(() => rowMatches({ missing: 1 }, { ownerId: 7 })).toThrow(/cannot evaluate/);
  });
});
