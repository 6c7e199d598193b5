import { MODEL_AGING_MS } from './fleet.js';
import { startWorkerProcess, type WorkerProcess } from '../support/worker-process.js';
import type { Prng } from '../support/prng.js';

// Child allocator processes that the model kills with SIGKILL and replaces. A short claim TTL lets
// the survivors take over a dead one's claimed jobs quickly.

export class WorkerPool {
  private readonly running: { id: string; process: WorkerProcess }[] = [];
  private next = 0;
  private restarting: Promise<void> | null = null;
  /** Ids of the workers killed: none of their claims may outlive the run. */
  readonly dead: string[] = [];
  readonly errors: string[] = [];

  constructor(
    private readonly url: string,
    private readonly size: number,
    private readonly claimTtlMs: number,
  ) {}

  private async spawn(): Promise<void> {
    const id = `model-${this.next++}`;
    const child = await startWorkerProcess(this.url, id, {
      WORKER_CLAIM_TTL_MS: String(this.claimTtlMs),
      // Three processes of four jobs each would only contend for the two cores of CI.
      WORKER_CONCURRENCY: '2',
      WORKER_AGING_MS: String(MODEL_AGING_MS),
    });
    this.running.push({ id, process: child });
  }

  async start(): Promise<void> {
    await Promise.all(Array.from({ length: this.size }, () => this.spawn()));
  }

  /** Kills one worker mid-work and starts its replacement in the background; false if one is still starting. */
  async killOne(rng: Prng): Promise<boolean> {
    if (this.restarting || this.running.length < 2) return false;
    const victim = this.running.splice(rng.int(0, this.running.length - 1), 1)[0]!;
    const how = await victim.process.kill('SIGKILL');
    if (how !== 'SIGKILL') this.errors.push(`worker ${victim.id} ended with ${how}, not SIGKILL`);
    this.dead.push(victim.id);
    this.restarting = this.spawn()
      .catch((error: unknown) => void this.errors.push(`replacing ${victim.id}: ${String(error)}`))
      .finally(() => (this.restarting = null));
    return true;
  }

  async settled(): Promise<void> {
    await this.restarting;
  }

  /** Output of a worker that logged an error, for the failure message. */
  complaints(): string[] {
    return this.running
      .filter((w) => /error/i.test(w.process.output()))
      .map((w) => `${w.id}: ${w.process.output().slice(-2000)}`);
  }

  async stop(): Promise<void> {
    await this.restarting;
    await Promise.all(this.running.splice(0).map((w) => w.process.kill('SIGKILL')));
  }
}
