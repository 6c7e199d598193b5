import { fieldOf } from '../config-fields.js';
import type { TransportConfig } from './config.js';
import { sshTargetProblems } from './ssh.js';

// Apart from config.ts (the shape of a transport's config, which the transports themselves read)
// because these checks use the ssh transport's own rules.

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
