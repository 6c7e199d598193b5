import { createRedisEventTarget } from '@graphql-yoga/redis-event-target';
import { Redis } from 'ioredis';
import { redactUrl, type Database } from '../db/database.js';
import type { Logger } from '../logger.js';
import { eventsChannel, PostgresEventTarget } from './postgres-event-target.js';

export interface EventFanout {
  /** How events reach the other processes of the service. */
  kind: 'redis' | 'postgresql' | 'in-process';
  /** Undefined: the pub/sub keeps events in this process (PGlite has only one). */
  target: EventTarget | undefined;
  close(): Promise<void>;
}

/**
 * Redis when REDIS_URL is set (Yoga's own Redis event target); otherwise PostgreSQL's
 * LISTEN/NOTIFY, which every process already shares, so scaling out needs no extra service.
 */
export async function createEventFanout(options: {
  redisUrl: string | undefined;
  db: Database;
  logger: Logger;
}): Promise<EventFanout> {
  if (options.redisUrl) {
    const publishClient = new Redis(options.redisUrl, { lazyConnect: true, maxRetriesPerRequest: 3 });
    const subscribeClient = new Redis(options.redisUrl, { lazyConnect: true });
    let lastError: Error | undefined;
    for (const client of [publishClient, subscribeClient]) {
      client.on('error', (error: Error) => {
        lastError = error;
        options.logger.warn(`redis: ${error.message}`);
      });
    }
    try {
      await Promise.all([publishClient.connect(), subscribeClient.connect()]);
    } catch (error) {
      // ioredis would go on reconnecting in the background of a process that is not starting.
      publishClient.disconnect();
      subscribeClient.disconnect();
      throw new RedisStartError(options.redisUrl, lastError ?? (error as Error));
    }
    return {
      kind: 'redis',
      target: createRedisEventTarget({ publishClient, subscribeClient }) as unknown as EventTarget,
      async close() {
        await Promise.all([publishClient.quit(), subscribeClient.quit()]);
      },
    };
  }
  if (options.db.url) {
    const target = new PostgresEventTarget(options.db.url, options.logger, eventsChannel(options.db.schema));
    await target.start();
    return { kind: 'postgresql', target, close: () => target.close() };
  }
  return { kind: 'in-process', target: undefined, close: async () => {} };
}

/**
 * REDIS_URL could not be used at start-up; the message is the line to show. ioredis's own
 * ("Connection is closed.") names neither the variable nor the cause, which its error events had.
 */
export class RedisStartError extends Error {
  constructor(url: string, cause: Error) {
    const refused = /^(WRONGPASS|NOAUTH|NOPERM)/.test(cause.message);
    const why = cause.message.replace(/\.$/, '');
    super(
      refused
        ? `REDIS_URL ${redactUrl(url)} was refused by Redis: ${why}: check the user and password in REDIS_URL`
        : `REDIS_URL ${redactUrl(url)} cannot be reached (${why}): check its host and port, and that Redis runs`,
      { cause },
    );
    this.name = 'RedisStartError';
  }
}
