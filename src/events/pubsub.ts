import { setMaxListeners } from 'node:events';
import { createPubSub } from 'graphql-yoga';
import type { DomainEvent, EventSink } from './domain-events.js';

export type LeaseEvent = Extract<DomainEvent, { kind: 'lease' }>;
export type ResourceEvent = Extract<DomainEvent, { kind: 'resource' }>;

/** The subscription topics, typed: per-object streams carry the object's id as the topic id. */
export type DrydockTopics = {
  'lease:event': [leaseId: number, event: LeaseEvent];
  'resource:event': [resourceId: number, event: ResourceEvent];
  'leases:changed': [event: LeaseEvent];
  'resources:changed': [event: ResourceEvent];
  /** Work is due at this time (ms since the epoch): every process's queue worker looks. */
  'jobs:due': [runAtMs: number];
};

export type DrydockPubSub = ReturnType<typeof createPubSub<DrydockTopics>>;

/** In-process by default; with an event target (PostgreSQL NOTIFY, Redis) across processes. */
export function createDrydockPubSub(eventTarget?: EventTarget): DrydockPubSub {
  const target = eventTarget ?? new EventTarget();
  // Every subscriber is a listener on its topic: thousands are normal, not a leak.
  if (target instanceof EventTarget) setMaxListeners(0, target);
  return createPubSub<DrydockTopics>({ eventTarget: target as never });
}

/** Where the domain's committed events go: onto the per-object and the dashboard topics. */
export function pubSubSink(pubsub: DrydockPubSub): EventSink {
  return {
    publish(event) {
      if (event.kind === 'lease') {
        pubsub.publish('lease:event', event.leaseId, event);
        pubsub.publish('leases:changed', event);
      } else if (event.kind === 'resource') {
        pubsub.publish('resource:event', event.resourceId, event);
        pubsub.publish('resources:changed', event);
      }
    },
  };
}
