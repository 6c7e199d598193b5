import type { CliLeaseEventsSubscription, CliLeaseFragment } from '../../generated/graphql/graphql.js';
import { logData } from '../output/format.js';

type Log = CliLeaseEventsSubscription['leaseEvents']['log'];

function clock(iso: string): string {
  return new Date(iso).toISOString().slice(11, 19);
}

/** One log entry as a line: time, lease, what happened, and its data as key=value pairs. */
export function logLine(
  lease: Pick<CliLeaseFragment, 'databaseId'>,
  log: Pick<Log, 'type' | 'data' | 'createdAt'>,
): string {
  const data = logData(log.data);
  return `${clock(log.createdAt)}  lease ${lease.databaseId}  ${log.type}${data ? `  ${data}` : ''}`;
}

/** "Why am I waiting", as the allocator last saw it. */
export function waitingFor(lease: CliLeaseFragment): string {
  const blocker = lease.blocker;
  if (!blocker) return '';
  const queue = (blocker.queuePosition ?? 0) > 1 ? `, #${blocker.queuePosition} in line` : '';
  return `waiting: ${blocker.message}${queue}`;
}

export function statusLine(leases: CliLeaseFragment[], active: Set<string>): string {
  if (leases.length === 1) {
    const lease = leases[0]!;
    const waiting = lease.status === 'PENDING' ? waitingFor(lease) : '';
    return `lease ${lease.databaseId} ${lease.status}${waiting ? ` (${waiting})` : ''}`;
  }
  const pending = leases.filter((lease) => !active.has(lease.id));
  const firstWaiting = pending.find((lease) => lease.blocker);
  return (
    `${active.size}/${leases.length} leases ACTIVE` +
    (firstWaiting ? ` (lease ${firstWaiting.databaseId} ${waitingFor(firstWaiting)})` : '')
  );
}

/** For plain output: the waiting reasons of pending leases, printed when they change. */
export function waitingRemark(leases: CliLeaseFragment[]): string {
  return leases
    .filter((lease) => lease.status === 'PENDING' && lease.blocker)
    .map((lease) => `lease ${lease.databaseId} ${waitingFor(lease)}`)
    .join('\n');
}
