import type { GuardedType } from '../access/policy.js';
import type { Visibility } from '../access/visibility.js';

/**
 * The object type an id under `key` names, when it names one the viewer may not be allowed to see:
 * a lease (`leaseId`), or a principal (`authorId`, `principalId`, `fromPrincipalId`, ...).
 */
function guardedTypeOf(key: string): GuardedType | undefined {
  if (key === 'leaseId') return 'Lease';
  if (key === 'authorId' || key === 'principalId' || /^[a-z]+PrincipalId$/.test(key)) return 'Principal';
  return undefined;
}

/**
 * `value` (a blocker, a log entry's data, a slot's holders) with the id of every lease and every
 * principal the viewer may not see replaced by null. A lease waits behind others' leases and loses
 * slot races to them, and the allocator records which; an admin drains, releases or runs a command
 * on what the viewer holds, and the log records who. Whose they are is another principal's
 * business, as the queue's anonymous entries are: the access policy's own rules (visibleWhere)
 * decide, so a viewer still sees its own id. Every such key at any depth counts; the shape stays
 * the same.
 */
export async function hideOthers<T>(value: T, access: Visibility): Promise<T> {
  if (access.all) return value;
  const walk = async (node: unknown): Promise<unknown> => {
    if (Array.isArray(node)) return Promise.all(node.map(walk));
    if (typeof node !== 'object' || node === null) return node;
    const entries = await Promise.all(
      Object.entries(node).map(async ([key, inner]): Promise<[string, unknown]> => {
        const type = guardedTypeOf(key);
        if (type && typeof inner === 'number') return [key, (await access.visible(type, inner)) ? inner : null];
        return [key, await walk(inner)];
      }),
    );
    return Object.fromEntries(entries);
  };
  return (await walk(value)) as T;
}
