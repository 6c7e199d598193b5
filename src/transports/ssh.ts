import { mkdir, mkdtemp, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { baseEnvironment } from './local.js';
import { runProcess } from './process.js';
import { remoteCommand } from './shell.js';
import type { CommandResult, CommandSpec, HostTransport } from './transport.js';

// Commands on a remote host through the system's OpenSSH client: it already knows every key
// type, agent-less batch use and host-key checking, and it is what operators debug with.
// A timeout or an abort kills the local client. Without a terminal, sshd does not signal the
// remote command then: it ends when it next writes to the closed channel, or by itself. A pty
// (-tt) would signal it, but would also merge stderr into stdout and rewrite line endings.

export interface SshTarget {
  address: string;
  port: number;
  user: string;
  connectTimeoutSeconds: number;
  /** An OpenSSH or PEM private key (a stored credential's secret). */
  privateKey: string;
}

export interface SshOptions {
  /** Where known_hosts lives: hosts are trusted on first use and checked ever after. */
  stateDir: string;
  /** The ssh binary (default: `ssh` on PATH). */
  sshPath?: string;
  outputLimit?: number;
}

/** ssh's own failures (cannot connect, host key changed, auth refused) all exit 255. */
const SSH_FAILURE = 255;
const USER_NAME = /^[A-Za-z0-9._][A-Za-z0-9._-]*$/;
// A host name (RFC 1123: no leading '-'), an IPv4 address, or an IPv6 one with its zone. Anything
// else (spaces, '@', shell syntax, a leading '-') is a typo or an attempt to slip an option or a
// command into ssh's command line, and is refused before ssh ever sees it.
const ADDRESS = /^[A-Za-z0-9_.:][A-Za-z0-9_.:%-]*$/;

export function knownHostsFile(stateDir: string): string {
  return join(stateDir, 'known_hosts');
}

/** The ssh client's argument list (after the program name); `command` is already one quoted string. */
export function sshArguments(
  target: Omit<SshTarget, 'privateKey'>,
  files: { keyFile: string; knownHostsFile: string },
  command: string,
): string[] {
  checkSshTarget(target);
  return [
    // No ~/.ssh/config of the server's user may change where or how we connect.
    '-F',
    'none',
    '-T',
    '-o',
    'BatchMode=yes',
    '-o',
    `ConnectTimeout=${target.connectTimeoutSeconds}`,
    '-o',
    'StrictHostKeyChecking=accept-new',
    '-o',
    `UserKnownHostsFile=${files.knownHostsFile}`,
    '-o',
    'GlobalKnownHostsFile=/dev/null',
    '-o',
    'IdentitiesOnly=yes',
    // Errors only: "Permanently added ... to the list of known hosts" is not the command's output.
    '-o',
    'LogLevel=ERROR',
    // A host that dies mid-command is noticed in under a minute instead of never.
    '-o',
    'ServerAliveInterval=15',
    '-o',
    'ServerAliveCountMax=3',
    '-p',
    String(target.port),
    '-i',
    files.keyFile,
    // An address starting with "-" must not be read as an option.
    '--',
    `${target.user}@${target.address}`,
    command,
  ];
}

/**
 * known_hosts decides which hosts are trusted, so its directory must be ours alone: in a shared
 * temp dir, another user could have created it first and planted keys.
 */
async function privateStateDir(dir: string): Promise<void> {
  await mkdir(dir, { recursive: true, mode: 0o700 });
  const info = await stat(dir);
  const uid = process.getuid?.();
  if ((uid !== undefined && info.uid !== uid) || (info.mode & 0o022) !== 0) {
    throw new Error(
      `refusing to keep ssh host keys in ${dir}: it must belong to this user and be writable by no one else`,
    );
  }
}

/** ssh refuses a key file without a final newline ("invalid format"); pasted keys often lack one. */
function keyFileContents(privateKey: string): string {
  const normalized = privateKey.replaceAll('\r\n', '\n').trim();
  return `${normalized}\n`;
}

/**
 * The key lives on disk only while one command runs: in a fresh directory only this user can
 * enter, removed as soon as ssh exits.
 */
async function withKeyFile<T>(privateKey: string, use: (keyFile: string) => Promise<T>): Promise<T> {
  const dir = await mkdtemp(join(tmpdir(), 'drydock-key-'));
  try {
    const keyFile = join(dir, 'id');
    await writeFile(keyFile, keyFileContents(privateKey), { mode: 0o600, flag: 'wx' });
    return await use(keyFile);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

/** Why ssh could not be pointed at the target safely, each at the field to fix; empty when it can. */
export function sshTargetProblems(
  target: Pick<SshTarget, 'address' | 'user'>,
): { field: 'user' | 'address'; message: string }[] {
  return [
    ...(USER_NAME.test(target.user)
      ? []
      : [{ field: 'user' as const, message: `${JSON.stringify(target.user)} is not a valid ssh user name` }]),
    ...(ADDRESS.test(target.address)
      ? []
      : [{ field: 'address' as const, message: `${JSON.stringify(target.address)} is not a valid host address` }]),
  ];
}

/**
 * Throws when ssh could not be pointed at the target safely: before any connection, and when a
 * config naming the target is saved (transports/config-problems.ts), so that both refuse the same targets.
 */
export function checkSshTarget(target: Pick<SshTarget, 'address' | 'user'>): void {
  const [problem] = sshTargetProblems(target);
  if (problem) throw new Error(problem.message);
}

export function sshTransport(target: SshTarget, options: SshOptions): HostTransport {
  checkSshTarget(target);
  const destination = `${target.user}@${target.address} port ${target.port}`;
  return {
    kind: 'ssh',
    describe: () => ({ kind: 'ssh', address: target.address, port: target.port, user: target.user }),
    async run(spec: CommandSpec): Promise<CommandResult> {
      const command = remoteCommand(spec.argv, { cwd: spec.cwd, env: spec.env });
      await privateStateDir(options.stateDir);
      const result = await withKeyFile(target.privateKey, (keyFile) =>
        runProcess({
          argv: [
            options.sshPath ?? 'ssh',
            ...sshArguments(target, { keyFile, knownHostsFile: knownHostsFile(options.stateDir) }, command),
          ],
          env: baseEnvironment(),
          timeoutMs: spec.timeoutMs,
          signal: spec.signal,
          onOutput: spec.onOutput?.bind(spec),
          outputLimit: options.outputLimit,
        }),
      );
      // A remote command may exit 255 too, but one that printed nothing at all is ssh failing.
      if (result.exitCode !== SSH_FAILURE || result.stdout !== '') return result;
      const reason = result.stderr.trim().split('\n').at(-1) || 'ssh exited with 255';
      const message = `drydock: cannot run the command over ssh on ${destination}: ${reason}\n`;
      spec.onOutput?.('stderr', message);
      return { ...result, exitCode: null, stderr: result.stderr + message };
    },
  };
}
