import { describe, expect, it } from 'vitest';
import { serverV8Flag } from '../src/v8-flags.js';

describe("the server's own V8 flag", () => {
  it('is --always-sparkplug when node was given no Sparkplug flag', () => {
    expect(serverV8Flag([])).toBe('--always-sparkplug');
    expect(serverV8Flag(['--enable-source-maps', '--max-old-space-size=512'])).toBe('--always-sparkplug');
    // A flag that only shares a word with it is not a choice about it.
    expect(serverV8Flag(['--trace-sparkplug-details-x'])).toBe('--always-sparkplug');
  });

  it.each([
    ['--no-always-sparkplug'],
    ['--no-sparkplug'],
    ['--nosparkplug'],
    ['--no_always_sparkplug'],
    ['--always-sparkplug'],
    ['--always_sparkplug=false'],
  ])('is left to the operator when node was given %s', (flag) => {
    expect(serverV8Flag(['--enable-source-maps', flag])).toBeUndefined();
  });
});
