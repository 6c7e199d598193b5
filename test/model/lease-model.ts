import type { Fleet, LeaseKind } from './fleet.js';
import type { LogChecker } from './log-checker.js';

// What the spec lets happen to each lease the model asked for, given what the model did to it.
// The log checker has already checked the state machine; this checks the reasons.

export interface ModelLease {
  id: number;
  kind: LeaseKind;
  until: Date | null;
  /** The model's release was accepted (the lease was live when asked), for it or its gang. */
  releasedByUs: boolean;
  /** Every part of its gang (itself included); null for a single lease. */
  gang: number[] | null;
  /** The blueprints it was asked of; empty: any its kind fits. */
  blueprintIds?: readonly number[];
}

/** Clocks of one machine, but `now` is taken when a transaction starts: allow a little. */
const CLOCK_SLACK_MS = 50;

function siblingLost(wanted: ModelLease, checker: LogChecker): boolean {
  return (wanted.gang ?? []).some((id) => {
    const part = checker.leases.get(id);
    return (
      id !== wanted.id &&
      part !== undefined &&
      (part.resourceGoneAtRelease || part.leftGoneResource || part.releaseReason === 'gang-part-lost')
    );
  });
}

export function checkLeases(model: ReadonlyMap<number, ModelLease>, checker: LogChecker, fleet: Fleet): string[] {
  const problems: string[] = [];
  const add = (message: string) => problems.length < 200 && problems.push(message);
  for (const wanted of model.values()) {
    const lease = checker.leases.get(wanted.id);
    const name = `lease ${wanted.id} (${wanted.kind}${wanted.until ? ', until' : ''})`;
    if (!lease) {
      add(`${name} was requested but never logged`);
      continue;
    }
    for (const resourceId of lease.resources) {
      const blueprintId = checker.resources.get(resourceId)?.blueprintId;
      if (blueprintId === undefined || !fleet.allowed[wanted.kind].includes(blueprintId))
        add(`${name} sat on resource ${resourceId} of blueprint ${blueprintId}, which cannot serve it`);
      else if (wanted.blueprintIds?.length && !wanted.blueprintIds.includes(blueprintId))
        add(`${name} sat on resource ${resourceId} of blueprint ${blueprintId}, not one it was asked of`);
    }
    if (wanted.kind === 'never') {
      const refusedInTime = lease.path.includes('BROKEN') && lease.refused;
      const releasedFirst = wanted.releasedByUs && lease.path.join() === 'PENDING,RELEASED,DESTROYED';
      const expiredFirst = wanted.until !== null && lease.releaseReason === 'expired';
      if (!refusedInTime && !releasedFirst && !expiredFirst)
        add(`${name} should have broken with a refusal: ${lease.path.join(' → ')}`);
    } else if (lease.brokenReason === 'gang-part-ended' && wanted.gang) {
      // Another part of its gang ended first (released by the model): the gang ends whole.
      if (!wanted.releasedByUs) add(`${name} broke as a gang part, but the model never released its gang`);
    } else if (lease.brokenReason !== null) {
      // Nothing in this model fails: a healthy blueprint that can serve must not break its leases.
      add(`${name} broke (${lease.brokenReason})`);
    }
    switch (lease.releaseReason) {
      case null:
        break;
      case 'expired':
        if (!wanted.until) add(`${name} expired without an until`);
        else if (lease.releasedAt!.getTime() < wanted.until.getTime() - CLOCK_SLACK_MS)
          add(`${name} expired at ${lease.releasedAt!.toISOString()}, before ${wanted.until.toISOString()}`);
        break;
      case 'command':
        // A gang part is also told to release when another part's resource went away.
        if (!wanted.releasedByUs && !lease.resourceGoneAtRelease && !siblingLost(wanted, checker))
          add(`${name} released by a command that neither the model nor its resource sent`);
        break;
      case 'gang-part-lost':
        if (!wanted.gang) add(`${name} released as a gang part, but it is no gang's`);
        break;
      case 'resource-released':
        if (!lease.resourceGoneAtRelease) add(`${name} released for its resource, which was still live`);
        break;
      default:
        add(`${name} released for an unknown reason ${lease.releaseReason}`);
    }
  }
  return problems;
}
