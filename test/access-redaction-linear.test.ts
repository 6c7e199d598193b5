// Masking URL credentials in a blueprint's config runs on every read of the blueprint, over strings
// a client wrote: it must take time linear in their length, and mask exactly what the pattern it
// replaced masked.
import { describe, expect, it } from 'vitest';
import { MASKED_USERINFO, redactConfig, withoutUrlCredentials } from '../src/access/redaction.js';

// The pattern the masking used to be, quadratic on a long run of letters without `@`: the
// reference for what is masked.
const REFERENCE_PATTERN = /([a-z][a-z0-9+.-]*:[/\\]{2})[^\s/\\?#]*@/gi;

function reference(text: string): string {
  const masked = text.replace(REFERENCE_PATTERN, `$1${MASKED_USERINFO}@`);
  let url: URL;
  try {
    url = new URL(masked);
  } catch {
    return masked;
  }
  if (url.password === '' && (url.username === '' || url.username === MASKED_USERINFO)) return masked;
  url.username = MASKED_USERINFO;
  url.password = '';
  return url.href;
}

/** Deterministic, so that a failure names an input that fails again. */
function random(seed: number): (below: number) => number {
  let state = seed;
  return (below) => {
    state = (state + 0x6d2b79f5) | 0;
    let t = Math.imul(state ^ (state >>> 15), 1 | state);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return (((t ^ (t >>> 14)) >>> 0) % below) | 0;
  };
}

// A string this long held the quadratic pattern far past the bound; a linear scan stays well
// within it, with room for a loaded machine.
const LONG = 100_000;
const BOUND_MS = 200;

/**
 * The shortest of a few runs of `work`: a process kept off the CPU by others' load is slow once,
 * not every time. A run far past the bound is no such accident and ends the trial.
 */
function millisecondsOf(work: () => unknown): number {
  let best = Infinity;
  for (let run = 0; run < 3 && best >= BOUND_MS; run++) {
    const start = performance.now();
    work();
    best = Math.min(best, performance.now() - start);
    if (best > 10 * BOUND_MS) break;
  }
  return best;
}

describe('masking URL credentials', () => {
  it.each([
    ['a run of letters', 'a'.repeat(LONG)],
    ['a scheme and a long userinfo without @', `x://${'a'.repeat(LONG)}`],
    ['a scheme and a long userinfo with @ only at its start', `x://@${'b'.repeat(LONG)}`],
    ['schemes one after another', 'a://'.repeat(LONG / 4)],
    ['userinfos one after another', 'a://u@'.repeat(LONG / 6)],
    ['long schemes without slashes', `${'a'.repeat(1_000)}:/`.repeat(LONG / 1_000)],
    ['digits and signs', '1+.-'.repeat(LONG / 4)],
    ['@ then schemes', `${'@'.repeat(LONG)}${'a://'.repeat(LONG / 4)}`],
  ])('takes time linear in the length: %s', (_name, text) => {
    expect(millisecondsOf(() => withoutUrlCredentials(text))).toBeLessThan(BOUND_MS);
  });

  it('masks a host-pool config with a long string in time linear in its length', () => {
    const config = {
      services: [
        {
          name: 's',
          bindings: [
            { name: 'h', address: 'a'.repeat(LONG), port: 22, attributes: { note: `x://${'y'.repeat(LONG)}` } },
          ],
        },
      ],
    };
    let redacted: unknown;
    expect(millisecondsOf(() => (redacted = redactConfig(undefined, config)))).toBeLessThan(BOUND_MS);
    expect(redacted).toEqual(config);
  });

  it('masks what the pattern masked', () => {
    expect(withoutUrlCredentials('see https://u:p@git.internal/x and ftp://a@b@c/d')).toBe(
      'see https://***@git.internal/x and ftp://***@c/d',
    );
    expect(withoutUrlCredentials('1+a.b-c:\\\\user@host')).toBe('1+a.b-c:\\\\***@host');
    expect(withoutUrlCredentials('9://u@h and -://u@h')).toBe('9://u@h and -://u@h');
    expect(withoutUrlCredentials('https:u:p@h')).toBe('https://***@h/');
    const pieces = [
      'a',
      'Z',
      '1',
      '+',
      '.',
      '-',
      ':',
      '/',
      '\\',
      '@',
      ' ',
      '?',
      '#',
      '\n',
      '\u00a0',
      'é',
      'ſ',
      '\u212a',
    ];
    const words = ['://', ':\\\\', 'a://', 'https://', 'u:p@', 'x:'];
    const next = random(20_240_601);
    const differing: string[] = [];
    for (let i = 0; i < 20_000; i++) {
      let text = next(3) === 0 ? 'https://' : '';
      for (let length = next(24); length > 0; length--)
        text += next(4) === 0 ? words[next(words.length)] : pieces[next(pieces.length)];
      if (withoutUrlCredentials(text) !== reference(text)) differing.push(text);
    }
    expect(differing.slice(0, 5)).toEqual([]);
  });
});
