import { existsSync } from 'node:fs';
import { chmod, mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { checkSshTarget, knownHostsFile, sshArguments, sshTransport } from '../../src/transports/ssh.js';
import { freePort, generateKey, sshdPath, startSshd, type KeyPair, type Sshd } from './sshd.js';

let scratch: string;
let key: KeyPair;
beforeAll(async () => {
  scratch = await mkdtemp(join(tmpdir(), 'drydock-ssh-test-'));
  key = await generateKey(scratch, 'id');
});
afterAll(async () => {
  await rm(scratch, { recursive: true, force: true });
});

describe('the ssh transport', () => {
  it('runs ssh in batch mode with a connect timeout, its own known_hosts and the quoted command last', () => {
    const args = sshArguments(
      { address: 'build-1.example', port: 2222, user: 'deploy', connectTimeoutSeconds: 7 },
      { keyFile: '/tmp/k/id', knownHostsFile: '/var/lib/drydock/known_hosts' },
      "cd -- /srv && printf '%s' 'a b'",
    );
    const options = args.flatMap((arg, i) => (args[i - 1] === '-o' ? [arg] : []));
    expect(options).toEqual(
      expect.arrayContaining([
        'BatchMode=yes',
        'ConnectTimeout=7',
        'StrictHostKeyChecking=accept-new',
        'UserKnownHostsFile=/var/lib/drydock/known_hosts',
        'IdentitiesOnly=yes',
      ]),
    );
    expect(args.slice(0, 2)).toEqual(['-F', 'none']);
    expect(args[args.indexOf('-p') + 1]).toBe('2222');
    expect(args[args.indexOf('-i') + 1]).toBe('/tmp/k/id');
    expect(args.slice(-3)).toEqual(['--', 'deploy@build-1.example', "cd -- /srv && printf '%s' 'a b'"]);
  });

  it('refuses user names and addresses that ssh would read as something else', () => {
    expect(() => checkSshTarget({ address: '10.0.0.1', user: '-oProxyCommand=x' })).toThrow(/not a valid ssh user/);
    expect(() => checkSshTarget({ address: '10.0.0.1', user: 'a@b' })).toThrow(/not a valid ssh user/);
    expect(() => checkSshTarget({ address: 'host name', user: 'deploy' })).toThrow(/not a valid host address/);
    expect(() => checkSshTarget({ address: 'build-1.example', user: 'deploy' })).not.toThrow();
  });

  it('writes the key 0600 into a private directory for the run only, ending in a newline', async () => {
    // A stand-in for ssh that reports what it was given.
    const fakeSsh = join(scratch, 'fake-ssh');
    await writeFile(
      fakeSsh,
      [
        '#!/bin/sh',
        'while [ $# -gt 0 ]; do [ "$1" = -i ] && key=$2; shift; done',
        'echo "$key"; stat -c %a "$key"; stat -c %a "$(dirname "$key")"; tail -c 1 "$key" | od -An -c',
      ].join('\n'),
    );
    await chmod(fakeSsh, 0o755);
    const transport = sshTransport(
      {
        address: '127.0.0.1',
        port: 22,
        user: 'deploy',
        connectTimeoutSeconds: 5,
        privateKey: key.privateKey.trimEnd(),
      },
      { stateDir: join(scratch, 'state'), sshPath: fakeSsh },
    );
    const result = await transport.run({ argv: ['true'] });
    const [keyFile, fileMode, dirMode, lastByte] = result.stdout.trim().split('\n');
    expect({ fileMode, dirMode, lastByte: lastByte?.trim() }).toEqual({
      fileMode: '600',
      dirMode: '700',
      lastByte: '\\n',
    });
    expect(existsSync(keyFile!)).toBe(false);
    expect(transport.describe()).toEqual({ kind: 'ssh', address: '127.0.0.1', port: 22, user: 'deploy' });
    expect(JSON.stringify(transport.describe())).not.toContain('PRIVATE');
  });

  it('refuses a known_hosts directory that others can write to', async () => {
    const shared = join(scratch, 'shared-state');
    await mkdir(shared);
    await chmod(shared, 0o777);
    const transport = sshTransport(
      { address: '127.0.0.1', port: 22, user: 'deploy', connectTimeoutSeconds: 5, privateKey: key.privateKey },
      { stateDir: shared, sshPath: '/bin/true' },
    );
    await expect(transport.run({ argv: ['true'] })).rejects.toThrow(/refusing to keep ssh host keys in .*shared-state/);
  });

  it('fails fast with a clear message when nothing listens on the port, and leaves no key behind', async () => {
    const port = await freePort();
    const keys = await mkdtemp(join(scratch, 'tmp-'));
    const savedTmp = process.env['TMPDIR'];
    process.env['TMPDIR'] = keys;
    try {
      const transport = sshTransport(
        { address: '127.0.0.1', port, user: 'deploy', connectTimeoutSeconds: 5, privateKey: key.privateKey },
        { stateDir: join(scratch, 'state') },
      );
      const streamed: string[] = [];
      const started = Date.now();
      const result = await transport.run({ argv: ['true'], onOutput: (_s, chunk) => streamed.push(chunk) });
      expect(Date.now() - started).toBeLessThan(4_000);
      expect(result.exitCode).toBeNull();
      expect(result.timedOut).toBe(false);
      expect(result.stderr).toContain(
        `drydock: cannot run the command over ssh on deploy@127.0.0.1 port ${port}: ssh: connect to host 127.0.0.1 port ${port}: Connection refused`,
      );
      expect(streamed.join('')).toContain('cannot run the command over ssh');
      expect(await readdir(keys)).toEqual([]);
    } finally {
      if (savedTmp === undefined) delete process.env['TMPDIR'];
      else process.env['TMPDIR'] = savedTmp;
    }
  });
});

const sshdLabel = sshdPath
  ? 'ssh against a real sshd'
  : 'ssh against a real sshd [skipped: no sshd; apt-get install openssh-server]';

describe.skipIf(!sshdPath)(sshdLabel, () => {
  let sshd: Sshd;
  let stateDir: string;
  const open = (overrides: { privateKey?: string } = {}) =>
    sshTransport(
      {
        address: '127.0.0.1',
        port: sshd.port,
        user: sshd.user,
        connectTimeoutSeconds: 5,
        privateKey: overrides.privateKey ?? sshd.client.privateKey,
      },
      { stateDir },
    );
  beforeAll(async () => {
    sshd = await startSshd();
    stateDir = join(scratch, 'sshd-state');
  });
  afterAll(async () => {
    await sshd?.stop();
  });

  it('runs the command in the directory with the environment, every argument intact, and trusts the host on first use', async () => {
    const tricky = ["it's", '$HOME', '`id`', 'a; echo injected', '*', 'two words', ''];
    const result = await open().run({
      argv: ['sh', '-c', 'pwd; printf "%s\\n" "$GREETING"; printf "[%s]\\n" "$@"', 'sh', ...tricky],
      cwd: '/tmp',
      env: { GREETING: 'hello world' },
    });
    expect(result.stderr).toBe('');
    expect(result.exitCode).toBe(0);
    expect(result.stdout).toBe(`/tmp\nhello world\n${tricky.map((word) => `[${word}]\n`).join('')}`);
    const known = await readFile(knownHostsFile(stateDir), 'utf8');
    expect(known).toContain(`[127.0.0.1]:${sshd.port} ${sshd.host.publicKey.split(' ').slice(0, 2).join(' ')}`);
  });

  it('returns the remote exit code and stderr', async () => {
    const result = await open().run({ argv: ['sh', '-c', 'echo oops >&2; exit 7'] });
    expect(result).toMatchObject({ exitCode: 7, stderr: 'oops\n', stdout: '', timedOut: false });
  });

  it('times out a remote command', async () => {
    const started = Date.now();
    // Short: the remote sleep outlives the killed client (see ssh.ts), and should not linger long.
    const result = await open().run({ argv: ['sleep', '5'], timeoutMs: 1_000 });
    expect(result).toMatchObject({ exitCode: null, timedOut: true });
    expect(Date.now() - started).toBeLessThan(8_000);
  });

  it('refuses a key the host does not accept, clearly', async () => {
    const stranger = await generateKey(scratch, 'stranger');
    const result = await open({ privateKey: stranger.privateKey }).run({ argv: ['true'] });
    expect(result.exitCode).toBeNull();
    expect(result.stderr).toMatch(/cannot run the command over ssh on .*: .*Permission denied/);
  });

  it('refuses a host whose key changed since it was first trusted', async () => {
    const other = await generateKey(scratch, 'impostor');
    await writeFile(
      knownHostsFile(stateDir),
      `[127.0.0.1]:${sshd.port} ${other.publicKey.split(' ').slice(0, 2).join(' ')}\n`,
    );
    const result = await open().run({ argv: ['true'] });
    expect(result.exitCode).toBeNull();
    expect(result.stderr).toMatch(/REMOTE HOST IDENTIFICATION HAS CHANGED|Host key verification failed/);
  });
});
