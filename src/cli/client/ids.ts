import { UsageError } from '../errors.js';

export type NodeType = 'Lease' | 'Resource' | 'Blueprint' | 'ApiToken' | 'Authorization' | 'Principal';

/**
 * The CLI shows and accepts numeric ids; the API takes Relay global ids, which are
 * base64("Type:number"). A global id pasted from GraphiQL is accepted as it is.
 */
export function globalId(type: NodeType, id: string): string {
  if (/^\d+$/.test(id) && Number(id) > 0) return Buffer.from(`${type}:${Number(id)}`).toString('base64');
  const decoded = Buffer.from(id, 'base64').toString('utf8');
  if (decoded.startsWith(`${type}:`)) return id;
  throw new UsageError(`"${id}" is not a ${type.toLowerCase()} id: give the number the listings show, e.g. 42`);
}

/** The number a listing shows for a global id (as given, when it is not one). */
export function shownId(id: string): string {
  const [, number] = /^[A-Za-z]+:(\d+)$/.exec(Buffer.from(id, 'base64').toString('utf8')) ?? [];
  return number ?? id;
}
