import { z } from 'zod';
import { configText, fieldOf } from '../blueprints/config-fields.js';
import { sshTargetProblems } from './ssh.js';

// The `transport` of a host-pool binding. Secrets never live here: ssh names a stored credential.

export const sshTransportConfig = z.strictObject({
  kind: z.literal('ssh'),
  user: configText(256, 'the user ssh logs in as'),
  /** Name of a stored credential (an SSH private key); no credential's name is longer. */
  credential: configText(100, 'the name of a stored ssh key'),
  connectTimeoutSeconds: z.number().int().min(1).max(300).default(10),
});

export const localTransportConfig = z.strictObject({ kind: z.literal('local') });

export const transportConfig = z.discriminatedUnion('kind', [sshTransportConfig, localTransportConfig], {
  // An object whose kind is neither is reported at its `kind`; anything else at the transport.
  error: (issue) =>
    typeof issue.input === 'object' && issue.input !== null
      ? `${fieldOf(issue)} must be "ssh" or "local"`
      : `${fieldOf(issue)} must be an object with a "kind" of "ssh" or "local"`,
});

export type TransportConfig = z.infer<typeof transportConfig>;

/** A transport a blueprint config names, with where it and its host's address are in the config. */
export interface TransportUse {
  path: (string | number)[];
  address: string;
  addressPath: (string | number)[];
  transport: TransportConfig;
}

/** The operator's switches that decide which transports a config may name (ALLOW_LOCAL_TRANSPORT). */
export interface TransportPolicy {
  allowLocal: boolean;
}

/**
 * Why the transports a config names could never run a command, checked when the config is saved:
 * the rules the transports apply when they open (checkSshTarget, the local switch), so that a
 * config that passes here fails later only for what may change since (a host down, a key revoked, the switch turned off).
 */
export function transportProblems(
  uses: readonly TransportUse[],
  policy: TransportPolicy,
): { path: (string | number)[]; message: string }[] {
  return uses.flatMap(({ path, address, addressPath, transport }) => {
    if (transport.kind === 'local') {
      if (policy.allowLocal) return [];
      const kindPath = [...path, 'kind'];
      return [
        {
          path: kindPath,
          message: `${fieldOf({ path: kindPath })}: the local transport is disabled on this server (ALLOW_LOCAL_TRANSPORT is false); use ssh, or set ALLOW_LOCAL_TRANSPORT=true to run leased commands on the server's own machine`,
        },
      ];
    }
    return sshTargetProblems({ address, user: transport.user }).map(({ field, message }) => {
      const fieldPath = field === 'address' ? addressPath : [...path, 'user'];
      return { path: fieldPath, message: `${fieldOf({ path: fieldPath })}: ${message}` };
    });
  });
}
