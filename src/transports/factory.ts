import { tmpdir, userInfo } from 'node:os';
import { join } from 'node:path';
import { PermanentFailure } from '../failures.js';
import type { Database } from '../db/database.js';
import { localTransport } from './local.js';
import { checkSshTarget, sshTransport } from './ssh.js';
import type { TransportFactory } from './transport.js';

export interface TransportFactoryOptions {
  db: Database;
  /** The operator's switch (ALLOW_LOCAL_TRANSPORT): commands on the server's own machine. */
  allowLocal: boolean;
  /** Where ssh keeps known_hosts (default: a directory of this user's under the temp dir). */
  stateDir?: string;
  sshPath?: string;
}

/** The credential kind an ssh transport accepts. */
export const SSH_KEY_KIND = 'ssh-key';

export function defaultStateDir(): string {
  return join(tmpdir(), `drydock-ssh-${userInfo().uid}`);
}

/** Every refusal is a PermanentFailure: retrying cannot make a missing key or a disabled switch appear. */
export function createTransportFactory(options: TransportFactoryOptions): TransportFactory {
  const stateDir = options.stateDir ?? defaultStateDir();
  return {
    async open({ address, port, transport }) {
      if (transport.kind === 'local') {
        if (!options.allowLocal) {
          throw new PermanentFailure(
            'local transport is disabled (set ALLOW_LOCAL_TRANSPORT=true on the server to run commands on its own machine)',
          );
        }
        return localTransport();
      }
      const credential = await options.db.prisma.credential.findUnique({ where: { name: transport.credential } });
      if (!credential) throw new PermanentFailure(`credential "${transport.credential}" does not exist`);
      if (credential.revokedAt) throw new PermanentFailure(`credential "${transport.credential}" has been revoked`);
      if (credential.kind !== SSH_KEY_KIND) {
        throw new PermanentFailure(`credential "${transport.credential}" is a ${credential.kind}, not an ssh key`);
      }
      const target = {
        address,
        port,
        user: transport.user,
        connectTimeoutSeconds: transport.connectTimeoutSeconds,
        privateKey: credential.secret,
      };
      try {
        checkSshTarget(target);
      } catch (error) {
        throw new PermanentFailure((error as Error).message);
      }
      return sshTransport(target, { stateDir, sshPath: options.sshPath });
    },
  };
}
