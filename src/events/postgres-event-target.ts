import pg from 'pg';
import type { Logger } from '../logger.js';

// Subscriptions must see events caused in any process of the service. PostgreSQL is already
// shared by all of them, so its LISTEN/NOTIFY carries the (small, id-only) events: one channel,
// one listening connection per process, and a process hears its own notifications too, so every
// delivery takes the same path. Redis is the alternative when REDIS_URL is set.

export const EVENTS_CHANNEL = 'drydock_events';
// NOTIFY payloads are limited to 8000 bytes; events are ids and statuses, far below that.
const MAX_PAYLOAD = 7_900;

type Listener = ((event: CustomEvent) => void) | { handleEvent(event: CustomEvent): void };

export class PostgresEventTarget extends EventTarget {
  private readonly listeners = new Map<string, Set<Listener>>();
  private listener: pg.Client | undefined;
  private closed = false;
  private reconnectDelayMs = 100;
  // Publishing is one statement per event: a small pool of its own keeps it off the request path.
  private readonly publisher: pg.Pool;

  constructor(
    private readonly url: string,
    private readonly logger: Logger,
  ) {
    super();
    this.publisher = new pg.Pool({ connectionString: url, max: 2 });
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
    await client.query(`LISTEN ${EVENTS_CHANNEL}`);
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
    let parsed: { type: string; detail: unknown };
    try {
      parsed = JSON.parse(payload) as { type: string; detail: unknown };
    } catch {
      return;
    }
    const event = new CustomEvent(parsed.type, { detail: parsed.detail });
    for (const listener of this.listeners.get(parsed.type) ?? []) {
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
    const payload = JSON.stringify({ type: event.type, detail: (event as CustomEvent).detail });
    if (payload.length > MAX_PAYLOAD) {
      this.logger.error(`event on ${event.type} too large to publish (${payload.length} bytes)`);
      return false;
    }
    this.publisher
      .query('SELECT pg_notify($1, $2)', [EVENTS_CHANNEL, payload])
      .catch((error: Error) => this.logger.warn(`could not publish an event: ${error.message}`));
    return true;
  }

  async close(): Promise<void> {
    this.closed = true;
    await this.listener?.end().catch(() => {});
    this.listener = undefined;
    await this.publisher.end();
  }
}
