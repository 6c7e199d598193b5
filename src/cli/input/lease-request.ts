import { globalId } from '../client/ids.js';
import { UsageError } from '../errors.js';
import { readJsonObject } from './json-file.js';

/** The flags of `lease`, `run` and `candidates` by the request's field each fills. */
export const LEASE_REQUEST_FLAGS = {
  resourceType: '--type',
  attributes: '--attributes',
  blueprintIds: '--blueprint',
  count: '--count',
  ttlSeconds: '--until',
  until: '--until',
  priority: '--priority',
  waitTimeoutSeconds: '--wait-timeout',
  heartbeatSeconds: '--heartbeat',
} as const;

/** What `lease` and `candidates` both ask for: --type, --attributes FILE|- and --blueprint ID... */
export async function leaseRequestFlags(
  command: string,
  values: { type?: string | undefined; attributes?: string | undefined; blueprint?: string[] | undefined },
  positionals: string[],
  stdin: NodeJS.ReadableStream,
): Promise<{ resourceType: string; attributes?: Record<string, unknown>; blueprintIds?: string[] }> {
  if (positionals.length > 0) throw new UsageError(`unexpected argument "${positionals[0]}"`);
  if (!values.type) throw new UsageError(`--type is required, e.g. drydock ${command} --type host`);
  return {
    resourceType: values.type,
    ...(values.attributes ? { attributes: await readJsonObject('--attributes', values.attributes, stdin) } : {}),
    ...(values.blueprint ? { blueprintIds: values.blueprint.map((id) => globalId('Blueprint', id)) } : {}),
  };
}
