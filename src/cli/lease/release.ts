import { CliReleaseLeaseDocument, type CliLeaseFragment } from '../../generated/graphql/graphql.js';
import { execute, type Connection } from '../client/http.js';
import { mutationError } from '../client/payload.js';
import type { CliError } from '../errors.js';

export type ReleaseResult = { ok: true; lease: CliLeaseFragment } | { ok: false; error: CliError };

/** Asks the server to release one lease (by global id); never throws, so a batch goes on past a failure. */
export async function releaseLease(connection: Connection, id: string): Promise<ReleaseResult> {
  try {
    const { releaseLease: result } = await execute(connection, CliReleaseLeaseDocument, { id });
    if (result.__typename === 'ReleaseLeasePayload') return { ok: true, lease: result.lease };
    return { ok: false, error: mutationError(result) };
  } catch (error) {
    return { ok: false, error: error as CliError };
  }
}

/** Releases what a `lease` run requested and did not hand over; says what it did on stderr. */
export async function releaseRequested(
  connection: Connection,
  leases: CliLeaseFragment[],
  note: (text: string) => void,
): Promise<void> {
  const live = leases.filter((lease) => lease.status !== 'DESTROYED' && lease.status !== 'RELEASED');
  const results = await Promise.all(live.map((lease) => releaseLease(connection, lease.id)));
  results.forEach((result, i) => {
    const id = live[i]!.databaseId;
    note(result.ok ? `released lease ${id}` : `could not release lease ${id}: ${result.error.message}`);
  });
}
