import { execFileSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { runCli } from './run-cli.js';

/** What bash completes for a command line (the word being completed is the last one). */
function complete(script: string, words: string[]): string[] {
  const array = words.map((w) => `'${w}'`).join(' ');
  const out = execFileSync(
    'bash',
    [
      '-c',
      `${script}\nCOMP_WORDS=(${array}); COMP_CWORD=${words.length - 1}; _drydock; printf '%s\\n' "\${COMPREPLY[@]}"`,
    ],
    { encoding: 'utf8' },
  );
  return out.split('\n').filter(Boolean);
}

describe('drydock completion', () => {
  it('prints a bash script that completes commands, subcommands and flags', async () => {
    const { code, stdout } = await runCli(['completion', 'bash']);
    expect(code).toBe(0);
    expect(complete(stdout, ['drydock', 'ca'])).toEqual(['candidates']);
    expect(complete(stdout, ['drydock', 'blueprint', 's'])).toEqual(['show']);
    expect(complete(stdout, ['drydock', 'blueprint', 'create', '--im'])).toEqual(['--implementation']);
    expect(complete(stdout, ['drydock', 'log', '--f'])).toEqual(['--follow']);
    expect(complete(stdout, ['drydock', 'release-lease', '--a'])).toEqual(['--all']);
  });

  it('prints a zsh script (through bashcompinit) and refuses other shells', async () => {
    const zsh = await runCli(['completion', 'zsh']);
    expect(zsh.stdout).toContain('bashcompinit');
    expect(zsh.stdout).toContain('complete -F _drydock drydock');
    const fish = await runCli(['completion', 'fish']);
    expect(fish.code).toBe(2);
    expect(fish.stderr).toMatch(/unknown shell "fish"/);
  });
});
