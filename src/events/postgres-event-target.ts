import { createHash } from 'node:crypto';
import pg from 'pg';
import { KEPT_OPEN } from '../db/database.js';
import type { Logger } from '../logger.js';

// Subscriptions must see events caused in any process of the service. PostgreSQL is already
// shared by all of them, so its LISTEN/NOTIFY carries the (small, id-only) events: one channel,
// one listening connection per process, and a process hears its own notifications too, so every
// delivery takes the same path. (Delivering a process's own events to it directly was tried: it
// saves a little latency, but subscribers then read the database in the middle of an outage that
// the notification path would have kept them out of, and their subscriptions fail.) Redis is the
// alternative when REDIS_URL is set.

export const EVENTS_CHANNEL = 'drydock_events';

/**
 * The channel of the service whose tables are in `schema`. Services in different schemas of one
 * database share its notifications: on one channel each would take the other's lease ids for its
 * own. A hash keeps the name a plain identifier within PostgreSQL's 63 bytes, whatever the schema
 * is called.
 */
export function eventsChannel(schema: string | undefined): string {
  if (schema === undefined) return EVENTS_CHANNEL;
  return `${EVENTS_CHANNEL}_${createHash('sha256').update(schema).digest('hex').slice(0, 16)}`;
}

// NOTIFY payloads are limited to 8000 bytes; events are ids and statuses, far below that.
const MAX_PAYLOAD = 7_900;
// What a notification adds around its events: the brackets of the array.
const ENVELOPE = 2;

type Listener = ((event: CustomEvent) => void) | { handleEvent(event: CustomEvent): void };

export class PostgresEventTarget extends EventTarget {
  private readonly listeners = new Map<string, Set<Listener>>();
  private listener: pg.Client | undefined;
  private closed = false;
  private reconnectDelayMs = 100;
  // Publishing is a statement: a small pool of its own keeps it off the request path.
  private readonly publisher: pg.Pool;
  // Events dispatched in the same tick (a commit's events and its wake-up) go out as one
  // notification: one statement instead of one per event and topic. One notification is in flight
  // at a time; what is dispatched meanwhile waits and goes out together when it returns. That
  // keeps the events in the order they were dispatched, and under load turns a statement per
  // commit into a statement per round trip.
  private pending: string[] = [];
  private pendingBytes = 0;
  private readonly full: string[] = [];
  private sending = false;

  constructor(
    private readonly url: string,
    private readonly logger: Logger,
    /** eventsChannel of the service's schema. */
    private readonly channel: string,
  ) {
    super();
    // A notification is a hint (subscribers read the rows, and resume by cursor after a crash):
    // it need not wait for the WAL to reach the disk, which every notifying commit otherwise does.
    this.publisher = new pg.Pool({ connectionString: url, ...KEPT_OPEN, max: 1, options: '-c synchronous_commit=off' });
    this.publisher.on('error', (error) => this.logger.warn(`event publisher connection lost: ${error.message}`));
  }

  /** Connects the listening session; resolves once notifications flow. */
  async start(): Promise<void> {
    const client = new pg.Client({ connectionString: this.url });
    client.on('notification', (message) => this.deliver(message.payload));
    // A lost listening connection is re-established; events sent meanwhile are lost to live
    // subscribers, who catch up from the database on their next event or reconnect by cursor.
    client.on('error', (error) => {
      this.logger.warn(`event listener connection lost: ${error.message}`);
      void this.reconnect(client);
    });
    await client.connect();
    await client.query(`LISTEN ${this.channel}`);
    this.listener = client;
    this.reconnectDelayMs = 100;
  }

  private async reconnect(failed: pg.Client): Promise<void> {
    if (this.closed || this.listener !== failed) return;
    this.listener = undefined;
    await failed.end().catch(() => {});
    while (!this.closed) {
      await new Promise((resolve) => setTimeout(resolve, this.reconnectDelayMs));
      try {
        await this.start();
        this.logger.info('event listener reconnected');
        return;
      } catch (error) {
        this.reconnectDelayMs = Math.min(this.reconnectDelayMs * 2, 5_000);
        this.logger.warn(`event listener reconnect failed: ${(error as Error).message}`);
      }
    }
  }

  private deliver(payload: string | undefined): void {
    if (!payload) return;
    let parsed: { type: string; detail: unknown } | { type: string; detail: unknown }[];
    try {
      parsed = JSON.parse(payload) as typeof parsed;
    } catch {
      return;
    }
    for (const item of Array.isArray(parsed) ? parsed : [parsed]) {
      this.dispatchLocally(new CustomEvent(item.type, { detail: item.detail }));
    }
  }

  private dispatchLocally(event: CustomEvent): void {
    for (const listener of this.listeners.get(event.type) ?? []) {
      if (typeof listener === 'function') listener(event);
      else listener.handleEvent(event);
    }
  }

  override addEventListener(type: string, callback: Listener | null): void {
    if (!callback) return;
    const set = this.listeners.get(type) ?? new Set<Listener>();
    set.add(callback);
    this.listeners.set(type, set);
  }

  override removeEventListener(type: string, callback: Listener | null): void {
    if (!callback) return;
    this.listeners.get(type)?.delete(callback);
  }

  override dispatchEvent(event: Event): boolean {
    const json = JSON.stringify({ type: event.type, detail: (event as CustomEvent).detail });
    const bytes = Buffer.byteLength(json);
    if (bytes + ENVELOPE > MAX_PAYLOAD) {
      this.logger.error(`event on ${event.type} too large to publish (${bytes} bytes)`);
      return false;
    }
    if (this.pendingBytes + bytes + 1 + ENVELOPE > MAX_PAYLOAD) this.seal();
    if (this.pending.length === 0 && this.full.length === 0) queueMicrotask(() => this.send());
    this.pending.push(json);
    this.pendingBytes += bytes + 1;
    return true;
  }

  /** Closes the batch being filled: it goes out as one notification, in its turn. */
  private seal(): void {
    if (this.pending.length === 0) return;
    this.full.push(`[${this.pending.join(',')}]`);
    this.pending = [];
    this.pendingBytes = 0;
  }

  private send(): void {
    if (this.sending) return;
    this.seal();
    const payload = this.full.shift();
    if (payload === undefined) return;
    this.sending = true;
    this.publisher
      .query('SELECT pg_notify($1, $2)', [this.channel, payload])
      .catch((error: Error) => this.logger.warn(`could not publish events: ${error.message}`))
      .finally(() => {
        this.sending = false;
        this.send();
      });
  }

  /** Resolves once every event dispatched so far has been handed to PostgreSQL. */
  private async flushed(): Promise<void> {
    this.send();
    while (this.sending || this.full.length > 0 || this.pending.length > 0) {
      await new Promise((resolve) => setImmediate(resolve));
      this.send();
    }
  }

  async close(): Promise<void> {
    await this.flushed();
    this.closed = true;
    await this.listener?.end().catch(() => {});
    this.listener = undefined;
    await this.publisher.end();
  }
}
