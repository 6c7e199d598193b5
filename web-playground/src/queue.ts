import { WebQueueDocument, type WebQueueQuery } from '../../src/generated/graphql/graphql.js';
import { execute } from './api.js';

export type QueueEntry = Extract<WebQueueQuery['queue'], { __typename: 'Queue' }>['entries'][number];

/**
 * The waiting queue of every resource type that has waiting leases, re-read when leases change
 * (a re-read already under way is followed by one more, so the last change is always shown).
 */
export class Queues {
  readonly byType = new Map<string, QueueEntry[]>();
  private reading = false;
  private again = false;

  constructor(private readonly changed: () => void) {}

  refresh(types: Iterable<string>): void {
    const wanted = [...new Set(types)].sort();
    if (this.reading) {
      this.again = true;
      return;
    }
    this.reading = true;
    void Promise.all(
      wanted.map(async (type) => {
        const { queue } = await execute(WebQueueDocument, { resourceType: type });
        return [type, queue.__typename === 'Queue' ? queue.entries : []] as const;
      }),
    )
      .then((rows) => {
        this.byType.clear();
        for (const [type, entries] of rows) if (entries.length > 0) this.byType.set(type, entries);
        this.changed();
      })
      .catch(() => undefined)
      .finally(() => {
        this.reading = false;
        if (this.again) {
          this.again = false;
          this.refresh(wanted);
        }
      });
  }
}
