// What the domain tells the outside world, published only after the transaction that caused it
// has committed. Events carry ids, never rows: receivers re-fetch what they show, so an event
// can cross a process boundary as JSON.

export type DomainEvent =
  | { kind: 'lease'; leaseId: number; status: string; logId: string | null }
  | { kind: 'resource'; resourceId: number; blueprintId: number; status: string; logId: string | null }
  | { kind: 'blueprint'; blueprintId: number; logId: string | null };

export interface EventSink {
  publish(event: DomainEvent): void;
}

/** Collects events during a transaction; `flush` hands them to the sink once it has committed. */
export class PendingEvents {
  private readonly events: DomainEvent[] = [];

  add(event: DomainEvent): void {
    this.events.push(event);
  }

  flush(sink: EventSink): void {
    for (const event of this.events.splice(0)) sink.publish(event);
  }
}
