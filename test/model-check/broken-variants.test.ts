import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

// The model checker must be able to fail: each deliberately broken variant of the protocol (an
// #ifdef switch in model/allocation.pml) is run through scripts/model-check.sh, which must reject
// it with a counterexample told in the project's terms. spin missing is a failure, not a skip:
// CI installs it (apt-get install -y spin gcc libc6-dev).

const root = fileURLToPath(new URL('../..', import.meta.url));
const script = `${root}scripts/model-check.sh`;

interface Variant {
  /** Defines for spin: the variant's switch first, then any configuration it needs. */
  defines: string[];
  /** The configuration of scripts/model-check.sh in which its fault can happen. */
  config: string;
  /** What the counterexample must say was violated. */
  violated: RegExp;
  /**
   * The search tries the processes in reverse order: the default order reaches this fault only
   * after millions of states (the second server's steps come late in it), the reverse within a
   * few hundred thousand to two million, where the default is the nearer for the others.
   */
  reverse?: true;
}

const variants: Variant[] = [
  // Two runs of the pass job at once (a claim expired under a live server) plan from the same
  // owner counts: only the turn keeps the quota.
  { defines: ['NO_TURN'], config: 'stall', violated: /more live leases than its quota/, reverse: true },
  // Without the turn and with the inserted count unchecked, two passes both allocate.
  {
    defines: ['UNCHECKED_SLOTS', 'NO_TURN', 'QUOTA1=3'],
    config: 'stall',
    violated: /concurrent-resource limit|two leases hold the exclusive resource/,
    reverse: true,
  },
  {
    defines: ['PARTIAL_GANG'],
    config: 'crash-exclusive',
    violated: /a gang holds some parts while another part waits/,
    reverse: true,
  },
  { defines: ['NO_RECHECK'], config: 'crash', violated: /onto a resource that is no longer open/ },
  {
    defines: ['REACQUIRE_GANG'],
    config: 'crash',
    violated: /a gang holds some parts while another part waits/,
    reverse: true,
  },
  { defines: ['NO_LEASE_LOCK'], config: 'crash', violated: /two writers of one lease/ },
  { defines: ['NO_SWEEP'], config: 'crash', violated: /a lease had not ended/ },
  { defines: ['NO_RERUN'], config: 'crash', violated: /a lease had not ended/ },
  // Found within a few states where three leases want R0 (under 'crash' it takes minutes of search).
  { defines: ['NEWEST_FIRST'], config: 'epoch-big', violated: /greedy policy order/ },
  // The pass skipped a lease locked by an update whose claim had expired; that update then died.
  { defines: ['NO_SKIP_RETRY'], config: 'crash-stall', violated: /a lease had not ended/ },
  // Liveness under weak fairness: a cycle of steps every process keeps taking, leases unserved.
  { defines: ['ALWAYS_AGAIN'], config: 'fair-cycles', violated: /non-progress cycle/ },
  // The capacity epoch: a release that does not mark the pass job leaves a skipped lease waiting.
  { defines: ['NO_MARK'], config: 'epoch', violated: /a lease had not ended/ },
  // A pass that skips although the pool it reads shows a newer mark (a release committed after
  // its turn read the mark) gives what freed to a lease behind the skipped one.
  { defines: ['SKIP_STALE'], config: 'epoch-big', violated: /greedy policy order/, reverse: true },
  // Each try reading the pool afresh: a release commits after a lease's try, and a lease of its
  // shape tried next keeps what the one refused a moment before could use.
  { defines: ['NO_REOFFER'], config: 'midpass', violated: /greedy policy order/ },
  // The same across shapes: a release commits after a single lease's try, and the gang tried
  // next keeps, for one of its parts, what that lease could use.
  { defines: ['NO_GANG_REOFFER'], config: 'midpass', violated: /greedy policy order/ },
  // A try behind a lease skipped in the epoch, judged by the mark read before its statements only:
  // a release committing between that read and the try's look at the slot lock goes to the try, of
  // other attributes, while the skipped lease waited for exactly that resource.
  { defines: ['MARK_BEFORE_TRY'], config: 'epoch-midpass-shapes', violated: /greedy policy order/ },
];

// Every search here ends at a violation within about two million states: over long before -O2's
// longer compile would pay back.
function modelCheck(args: string[], order: 'default' | 'reverse'): Promise<{ code: number; output: string }> {
  return new Promise((resolve) => {
    execFile(
      'bash',
      [script, ...args],
      {
        env: { ...process.env, MODEL_CHECK_MEMLIM: '2048', MODEL_CHECK_OPT: '-O0', MODEL_CHECK_ORDER: order },
        maxBuffer: 16 * 1024 * 1024,
      },
      (error, stdout, stderr) => {
        const code = error ? (typeof error.code === 'number' ? error.code : -1) : 0;
        resolve({ code, output: `${stdout}${stderr}` });
      },
    );
  });
}

describe('the model checker rejects broken variants of the allocation protocol', () => {
  it('covers every variant the model declares', () => {
    const model = readFileSync(`${root}model/allocation.pml`, 'utf8');
    const header = model.slice(model.indexOf('Broken variants'), model.indexOf('*/', model.indexOf('Broken variants')));
    const declared = [...header.matchAll(/^ \*\s+([A-Z_]+)\s/gm)].map((m) => m[1]);
    expect(declared.length).toBeGreaterThan(5);
    expect(new Set(variants.map((v) => v.defines[0]))).toEqual(new Set(declared));
  });

  for (const variant of variants) {
    it(`rejects ${variant.defines.join(' ')} with a counterexample`, { timeout: 600_000 }, async () => {
      const args = ['--config', variant.config, ...variant.defines.map((d) => `-D${d}`)];
      const { code, output } = await modelCheck(args, variant.reverse ? 'reverse' : 'default');
      // 2: spin or gcc missing, whose message is in the output.
      expect(code, output).toBe(1);
      expect(output).toMatch(/VIOLATION \(\d+ states searched/);
      expect(output).toMatch(variant.violated);
      // The trail, told as steps of servers, clients and jobs, ending in the violation.
      expect(output).toMatch(/^\s+\d+\. p\d: claims job (pass:host|lease:\d|resource:R\d)/m);
      expect(output).toMatch(/^\s+\d+\. VIOLATED: |repeat forever/m);
      expect(output).toMatch(/final state:\n\s+lease 0: /);
    });
  }
});
