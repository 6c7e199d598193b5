// One event wakes every subscriber of its topic in this process, and each would read the same
// rows: 5,000 dashboards, 5,000 identical statements. Subscribers woken by the same event object
// share one read per key instead. The key is per event, never per object: a subscriber woken by
// a later event reads again, so nothing committed after the shared read can be missed. Entries
// live as long as the event does (a WeakMap), so nothing needs evicting.

const reads = new WeakMap<object, Map<string, Promise<unknown>>>();

/** `read()`, or the promise of a read another subscriber already started for the same event and key. */
export function sharedRead<T>(event: object, key: string, read: () => Promise<T>): Promise<T> {
  let byKey = reads.get(event);
  if (!byKey) reads.set(event, (byKey = new Map()));
  const started = byKey.get(key) as Promise<T> | undefined;
  if (started) return started;
  const pending = read();
  byKey.set(key, pending);
  // A failed read is not shared: the next subscriber tries for itself.
  pending.catch(() => byKey.delete(key));
  return pending;
}
