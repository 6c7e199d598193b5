import { describe, expect, it } from 'vitest';
import { localTransport } from '../../src/transports/local.js';
import { remoteCommand, shellQuote } from '../../src/transports/shell.js';

// What an ssh server does with the command string: hands it to the user's shell. Running the
// string through a real sh here shows the quoting holds, not just that it looks right.
const sh = (command: string) => localTransport().run({ argv: ['sh', '-c', command] });

const tricky = [
  "it's",
  '"double"',
  '$HOME',
  '$(touch /tmp/drydock-pwned)',
  '`id`',
  'a; echo injected',
  'a && b || c',
  '*',
  '~',
  'back\\slash',
  'new\nline',
  '',
  ' leading and trailing ',
  '#not-a-comment',
  '-n',
];

describe('shell quoting for ssh', () => {
  it('leaves plain words bare and single-quotes everything else', () => {
    expect(shellQuote('ls')).toBe('ls');
    expect(shellQuote('/usr/bin/git')).toBe('/usr/bin/git');
    expect(shellQuote('--depth=1')).toBe("'--depth=1'");
    expect(shellQuote('')).toBe("''");
    expect(shellQuote('two words')).toBe("'two words'");
    expect(shellQuote("it's")).toBe("'it'\\''s'");
  });

  it('builds cd, assignments and the command, each part quoted', () => {
    expect(remoteCommand(['git', 'status'], { cwd: '/srv/work copy', env: { GIT_DIR: '.git', MSG: "a'b" } })).toBe(
      "cd -- '/srv/work copy' && GIT_DIR=.git MSG='a'\\''b' git status",
    );
    expect(remoteCommand(['true'])).toBe('true');
    expect(() => remoteCommand([])).toThrow(/at least a program/);
    expect(() => remoteCommand(['true'], { env: { 'BAD NAME': 'x' } })).toThrow(/not a valid environment variable/);
  });

  it('gives every argument back exactly, through a real shell', async () => {
    const result = await sh(remoteCommand(['printf', '[%s]\\n', ...tricky]));
    expect(result.exitCode).toBe(0);
    expect(result.stdout).toBe(tricky.map((word) => `[${word}]\n`).join(''));
  });

  it('keeps directories and values with spaces and quotes intact, through a real shell', async () => {
    const result = await sh(
      remoteCommand(['sh', '-c', 'pwd; printf "%s" "$VALUE"'], { cwd: '/', env: { VALUE: tricky.join('|') } }),
    );
    expect(result.stdout).toBe(`/\n${tricky.join('|')}`);
  });

  it('never takes a program named like an assignment for one', async () => {
    const result = await sh(remoteCommand(['FOO=bar', 'x']));
    expect(result.exitCode).toBe(127);
    expect(result.stderr).toMatch(/FOO=bar.*not found/);
  });
});
