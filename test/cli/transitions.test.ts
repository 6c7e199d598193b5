import { describe, expect, it } from 'vitest';
import { transitionsSince } from '../../src/cli/lease/transitions.js';

const at = '2026-01-01T00:00:00.000Z';
const lease = (status: string, stamps: { acquired?: boolean; activated?: boolean; released?: boolean } = {}) =>
  ({
    status,
    acquiredAt: stamps.acquired ? at : null,
    activatedAt: stamps.activated ? at : null,
    releasedAt: stamps.released ? at : null,
  }) as Parameters<typeof transitionsSince>[1];

describe('watch: the transitions a change event stands for', () => {
  const done = { acquired: true, activated: true, released: true };
  it('prints a repeated status once', () => {
    expect(transitionsSince('DESTROYED', lease('DESTROYED', done))).toEqual([]);
  });
  it('fills in the statuses an event skipped, telling a release from a break', () => {
    expect(transitionsSince('ACTIVE', lease('DESTROYED', done))).toEqual(['RELEASED', 'DESTROYED']);
    expect(transitionsSince('PENDING', lease('DESTROYED'))).toEqual(['BROKEN', 'DESTROYED']);
    expect(transitionsSince('PENDING', lease('ACTIVE', { acquired: true, activated: true }))).toEqual([
      'ACQUIRED',
      'ACTIVE',
    ]);
  });
  it('shows a new lease from its beginning, and a step back as it is', () => {
    expect(transitionsSince(undefined, lease('ACQUIRED', { acquired: true }))).toEqual(['PENDING', 'ACQUIRED']);
    expect(transitionsSince('ACTIVE', lease('ACQUIRED', { acquired: true, activated: true }))).toEqual(['ACQUIRED']);
  });
});
