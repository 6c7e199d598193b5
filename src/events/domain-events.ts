// What the domain tells the outside world, published only after the transaction that caused it
// has committed. Events carry ids, never rows: receivers re-fetch what they show, so an event
// can cross a process boundary as JSON.

export type DomainEvent =
  | {
      kind: 'lease';
      leaseId: number;
      status: string;
      logId: string | null;
      /** The resource the log entry names (a lease's entries once it is on one): its stream hears of it too. */
      resourceId?: number;
    }
  | { kind: 'resource'; resourceId: number; blueprintId: number; status: string; logId: string | null }
  | { kind: 'blueprint'; blueprintId: number; logId: string | null };

export interface EventSink {
  publish(event: DomainEvent): void;
  /** All events of one commit at once, in order, when the sink can do better with them together. */
  publishBatch?(events: readonly DomainEvent[]): void;
}

/** Collects events during a transaction; `flush` hands them to the sink once it has committed. */
export class PendingEvents {
  private readonly events: DomainEvent[] = [];

  add(event: DomainEvent): void {
    this.events.push(event);
  }

  /** Puts `earlier`'s events (which happened before these) in front of them. */
  takeFrom(earlier: PendingEvents): void {
    this.events.unshift(...earlier.events.splice(0));
  }

  /** Puts `later`'s events (which happened after these) behind them. */
  append(later: PendingEvents): void {
    this.events.push(...later.events.splice(0));
  }

  flush(sink: EventSink): void {
    const events = this.events.splice(0);
    if (events.length === 0) return;
    if (sink.publishBatch) sink.publishBatch(events);
    else for (const event of events) sink.publish(event);
  }
}
