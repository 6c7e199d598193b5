import type { Visibility } from '../access/visibility.js';

/**
 * `value` (a blocker, a log entry's data, a slot's holders) with the id of every lease the viewer
 * may not see replaced by null. A lease waits behind others' leases and loses slot races to them,
 * and the allocator records which; their ids are another owner's business, as the queue's
 * anonymous entries are. Every `leaseId` key at any depth counts; the shape stays the same.
 */
export async function hideLeases<T>(value: T, access: Visibility): Promise<T> {
  if (access.all) return value;
  const walk = async (node: unknown): Promise<unknown> => {
    if (Array.isArray(node)) return Promise.all(node.map(walk));
    if (typeof node !== 'object' || node === null) return node;
    const entries = await Promise.all(
      Object.entries(node).map(async ([key, inner]): Promise<[string, unknown]> => {
        if (key === 'leaseId' && typeof inner === 'number')
          return [key, (await access.visible('Lease', inner)) ? inner : null];
        return [key, await walk(inner)];
      }),
    );
    return Object.fromEntries(entries);
  };
  return (await walk(value)) as T;
}
