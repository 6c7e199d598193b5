import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir, userInfo } from 'node:os';
import { join } from 'node:path';
import { runProcess } from '../../src/transports/process.js';

// A real OpenSSH server for the tests: its own host key, config and authorized key, on a free
// loopback port, logging in as whoever runs the tests. CI installs Debian's openssh-server.

export const sshdPath = ['/usr/sbin/sshd', '/usr/bin/sshd'].find((path) => existsSync(path));

/** A port nothing listens on: taken from the OS, then given back. */
export async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  await new Promise((resolve) => server.close(resolve));
  return port;
}

export interface KeyPair {
  privateKey: string;
  publicKey: string;
}

export async function generateKey(
  dir: string,
  name: string,
  options: { passphrase?: string; pem?: boolean } = {},
): Promise<KeyPair> {
  const path = join(dir, name);
  const format = options.pem ? ['-m', 'PEM', '-t', 'ecdsa'] : ['-t', 'ed25519'];
  const result = await runProcess({
    argv: ['ssh-keygen', '-q', ...format, '-N', options.passphrase ?? '', '-C', name, '-f', path],
    env: { PATH: process.env['PATH'] ?? '/usr/bin:/bin' },
  });
  if (result.exitCode !== 0) throw new Error(`ssh-keygen failed: ${result.stderr}`);
  return { privateKey: await readFile(path, 'utf8'), publicKey: await readFile(`${path}.pub`, 'utf8') };
}

export interface Sshd {
  port: number;
  user: string;
  /** The key the server accepts for `user`. */
  client: KeyPair;
  host: KeyPair;
  stop(): Promise<void>;
}

export async function startSshd(): Promise<Sshd> {
  if (!sshdPath) throw new Error('no sshd on this machine (apt-get install openssh-server)');
  const dir = await mkdtemp(join(tmpdir(), 'drydock-sshd-'));
  const host = await generateKey(dir, 'host_key');
  const client = await generateKey(dir, 'client_key');
  await writeFile(join(dir, 'authorized_keys'), client.publicKey);
  const port = await freePort();
  const user = userInfo().username;
  await writeFile(
    join(dir, 'sshd_config'),
    [
      'ListenAddress 127.0.0.1',
      `Port ${port}`,
      `HostKey ${join(dir, 'host_key')}`,
      'PidFile none',
      `AuthorizedKeysFile ${join(dir, 'authorized_keys')}`,
      // The temp dir's modes are not what sshd demands of a home directory.
      'StrictModes no',
      'UsePAM no',
      'PasswordAuthentication no',
      'KbdInteractiveAuthentication no',
      'PermitRootLogin prohibit-password',
      `AllowUsers ${user}`,
    ].join('\n') + '\n',
  );
  // As root, sshd insists on its privilege-separation directory, which Debian's service unit
  // creates at boot; nothing started that service here.
  if (process.getuid?.() === 0) await mkdir('/run/sshd', { recursive: true, mode: 0o755 });
  const child = spawn(sshdPath, ['-D', '-e', '-f', join(dir, 'sshd_config')], { stdio: ['ignore', 'ignore', 'pipe'] });
  let log = '';
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`sshd did not start:\n${log}`)), 10_000);
    child.stderr.on('data', (chunk: Buffer) => {
      log += chunk.toString();
      if (log.includes('Server listening')) {
        clearTimeout(timer);
        resolve();
      }
    });
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`sshd exited with ${code}:\n${log}`));
    });
  });
  return {
    port,
    user,
    client,
    host,
    async stop() {
      if (child.exitCode === null) {
        const exited = new Promise((resolve) => child.once('exit', resolve));
        child.kill('SIGTERM');
        await exited;
      }
      await rm(dir, { recursive: true, force: true });
    },
  };
}
