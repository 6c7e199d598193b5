import type { Client } from 'graphql-ws';
import {
  CliLeaseEventsDocument,
  type CliLeaseEventsSubscription,
  type CliLeaseFragment,
} from '../../generated/graphql/graphql.js';
import type { Connection } from '../client/http.js';
import { subscribe } from '../client/ws.js';
import { type CliError } from '../errors.js';
import type { Progress } from '../output/progress.js';
import { logLine, statusLine, waitingRemark } from './describe.js';

export type FollowOutcome =
  | { kind: 'active'; leases: CliLeaseFragment[] }
  | { kind: 'failed'; lease: CliLeaseFragment; reason: string; leases: CliLeaseFragment[] }
  | { kind: 'interrupted'; leases: CliLeaseFragment[] };

const ENDED = new Set(['BROKEN', 'RELEASED', 'DESTROYED']);
// The wait ends on these log entries. The event carries the lease as it is *now*, so a replayed
// early entry may already show a later status: judging by the entry's type prints the history in
// order and stops at the right point; the status only rules out an activation that was undone.
const ACTIVATED = 'lease-activated';
const ENDING = new Set(['lease-broken', 'lease-release-requested', 'lease-released', 'lease-destroyed']);

type Event = CliLeaseEventsSubscription['leaseEvents'];

/**
 * Follows each lease's event stream from its beginning, printing every entry, until all are
 * ACTIVE, one has ended, or the user interrupts. Cursors already seen are skipped, so a
 * reconnect that replays the stream prints nothing twice.
 */
export function followLeases(
  client: Client,
  connection: Connection,
  requested: CliLeaseFragment[],
  progress: Progress,
  interrupted: AbortSignal,
): Promise<FollowOutcome> {
  const current = new Map(requested.map((lease) => [lease.id, lease]));
  const active = new Set<string>();
  const lastCursor = new Map<string, bigint>();
  const unsubscribers: (() => void)[] = [];
  const leases = () => [...current.values()];
  const refresh = () => progress.status(statusLine(leases(), active), waitingRemark(leases()));

  return new Promise<FollowOutcome>((resolve, reject) => {
    let settled = false;
    const settle = (finish: () => void) => {
      if (settled) return;
      settled = true;
      interrupted.removeEventListener('abort', onAbort);
      for (const unsubscribe of unsubscribers) unsubscribe();
      progress.stop();
      finish();
    };
    const onAbort = () => settle(() => resolve({ kind: 'interrupted', leases: leases() }));
    interrupted.addEventListener('abort', onAbort);

    const onEvent = (event: Event) => {
      const cursor = BigInt(event.cursor);
      if (cursor <= (lastCursor.get(event.lease.id) ?? -1n)) return;
      lastCursor.set(event.lease.id, cursor);
      current.set(event.lease.id, event.lease);
      progress.line(logLine(event.lease, event.log));
      if (event.log.type === ACTIVATED && !ENDED.has(event.lease.status)) active.add(event.lease.id);
      if (ENDING.has(event.log.type)) {
        return settle(() =>
          resolve({ kind: 'failed', lease: event.lease, reason: failureReason(event), leases: leases() }),
        );
      }
      if (active.size === current.size) return settle(() => resolve({ kind: 'active', leases: leases() }));
      refresh();
    };

    refresh();
    for (const lease of requested) {
      unsubscribers.push(
        subscribe(
          client,
          connection,
          CliLeaseEventsDocument,
          { leaseId: lease.id, after: '0' },
          {
            next: (data) => onEvent(data.leaseEvents),
            error: (error: CliError) => settle(() => reject(error)),
            complete: () => {
              if (active.has(lease.id)) return;
              const last = current.get(lease.id) ?? lease;
              settle(() =>
                resolve({
                  kind: 'failed',
                  lease: last,
                  reason: last.statusReason ?? 'its event stream ended before it became ACTIVE',
                  leases: leases(),
                }),
              );
            },
          },
        ),
      );
    }
  });
}

function failureReason(event: Event): string {
  const data = event.log.data as { reason?: unknown; message?: unknown } | null;
  const said = [data?.message, event.lease.statusReason, data?.reason].find((v) => typeof v === 'string' && v);
  return typeof said === 'string' ? said : event.log.type.replace(/^lease-/, '');
}
