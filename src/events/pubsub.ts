import { setMaxListeners } from 'node:events';
import { Repeater, type createPubSub } from 'graphql-yoga';
import type { DomainEvent, EventSink } from './domain-events.js';

export type LeaseEvent = Extract<DomainEvent, { kind: 'lease' }>;
export type ResourceEvent = Extract<DomainEvent, { kind: 'resource' }>;

/** The subscription topics, typed: per-object streams carry the object's id as the topic id. */
export type DrydockTopics = {
  'lease:event': [leaseId: number, event: LeaseEvent];
  /** The resource's own events, and those of leases whose log entries are on it (its log holds both). */
  'resource:event': [resourceId: number, event: ResourceEvent | LeaseEvent];
  'leases:changed': [event: LeaseEvent];
  'resources:changed': [event: ResourceEvent];
  /** A token was revoked: every process ends the connections it opened (server/sessions.ts). */
  'token:revoked': [tokenId: number];
  /** Work is due at this time (ms since the epoch): every process's queue worker looks. */
  'jobs:due': [runAtMs: number];
};

export type DrydockPubSub = ReturnType<typeof createPubSub<DrydockTopics>>;

/**
 * In-process by default; with an event target (PostgreSQL NOTIFY, Redis) across processes. The
 * same as Yoga's createPubSub (same topics and events on the target), except for what a slow
 * subscriber gets.
 *
 * Yoga's subscriptions queue every event unbounded and throw (taking the process down, from an
 * event listener) once 1,024 wait for one subscriber: a dashboard subscription reads the database
 * for each event, so any burst faster than that did it. Here a subscriber's pending events are
 * coalesced by object: one waiting event per lease or resource, the latest (a subscriber reads the
 * object's rows when it gets to it, so an older event of the same object would only make it read
 * them again). Memory is bounded by the objects that changed, and nothing a subscriber would
 * have read is lost.
 */
export function createDrydockPubSub(
  eventTarget?: EventTarget,
  /** Told, per subscriber, how long each event waited in this process before it was handed over. */
  onDelivered: (waitedMs: number) => void = () => {},
): DrydockPubSub {
  const target = eventTarget ?? new EventTarget();
  // Every subscriber is a listener on its topic: thousands are normal, not a leak.
  if (target instanceof EventTarget) setMaxListeners(0, target);
  const pubsub = {
    publish(routingKey: string, ...args: unknown[]) {
      const payload = args[1] ?? args[0] ?? null;
      const topic = args[1] === undefined ? routingKey : `${routingKey}:${String(args[0])}`;
      target.dispatchEvent(new CustomEvent(topic, { detail: payload }));
    },
    subscribe(routingKey: string, id?: unknown) {
      const topic = id === undefined ? routingKey : `${routingKey}:${String(id)}`;
      return new Repeater<unknown>(async (push, stop) => {
        const pending = new Map<unknown, { detail: unknown; at: number }>();
        let draining = false;
        const drain = async () => {
          draining = true;
          try {
            // One push at a time: the next waits until the subscriber has taken this one.
            for (let next = pending.entries().next(); !next.done; next = pending.entries().next()) {
              const [key, { detail, at }] = next.value;
              pending.delete(key);
              onDelivered(performance.now() - at);
              await push(detail);
            }
          } finally {
            draining = false;
          }
        };
        const listener = (event: Event) => {
          const detail = (event as CustomEvent).detail as unknown;
          pending.set(coalescingKey(detail), { detail, at: performance.now() });
          if (!draining) void drain();
        };
        target.addEventListener(topic, listener);
        await stop;
        target.removeEventListener(topic, listener);
      });
    },
  };
  return pubsub as unknown as DrydockPubSub;
}

/** Events of one object replace each other while they wait; anything else waits as it is. */
function coalescingKey(detail: unknown): unknown {
  if (typeof detail === 'object' && detail !== null && 'kind' in detail) {
    const event = detail as DomainEvent;
    if (event.kind === 'lease') return `lease:${event.leaseId}`;
    if (event.kind === 'resource') return `resource:${event.resourceId}`;
  }
  return detail;
}

/**
 * Where the domain's committed events go: onto the per-object and the dashboard topics. A lease
 * event whose log entry is on a resource goes onto that resource's topic as well: the entry is in
 * the resource's log, so its resourceEvents stream must read it now, not at the resource's next
 * event.
 *
 * Of the events one commit caused for one object, only the last is published: a subscriber reads
 * the object's rows on each event (the log after its cursor, the lease as it is now), so an
 * earlier event of the same commit would only make it read the same rows again, and a lease
 * released and destroyed in one update would cost every dashboard two reads instead of one. A
 * lease's events on a resource's topic are kept apart, per lease and resource, from the resource's
 * own (which alone end its stream) and from the lease's on another resource (a lease moved in the
 * commit must wake both).
 */
export function pubSubSink(pubsub: DrydockPubSub): EventSink {
  /** Each publication of an event, by what replaces it within a commit. */
  const publications = (event: DomainEvent): [key: string, send: () => void][] => {
    if (event.kind === 'lease') {
      const own: [string, () => void] = [
        `lease:${event.leaseId}`,
        () => {
          pubsub.publish('lease:event', event.leaseId, event);
          pubsub.publish('leases:changed', event);
        },
      ];
      const { resourceId } = event;
      if (resourceId === undefined) return [own];
      return [
        own,
        [`lease:${event.leaseId}:resource:${resourceId}`, () => pubsub.publish('resource:event', resourceId, event)],
      ];
    }
    if (event.kind === 'resource') {
      return [
        [
          `resource:${event.resourceId}`,
          () => {
            pubsub.publish('resource:event', event.resourceId, event);
            pubsub.publish('resources:changed', event);
          },
        ],
      ];
    }
    return [];
  };
  return {
    publish(event) {
      for (const [, send] of publications(event)) send();
    },
    publishBatch(events) {
      const last = new Map<string, () => void>();
      for (const event of events) {
        for (const [key, send] of publications(event)) {
          // Re-inserted, so that the order is that of each object's last event.
          last.delete(key);
          last.set(key, send);
        }
      }
      for (const send of last.values()) send();
    },
  };
}
