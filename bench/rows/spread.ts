import { fork, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { join } from 'node:path';
import { projectRoot } from '../../src/db/migrations-folder.js';
import { activeLease, releaseLease, serverMetric } from '../client.js';
import { rssBytes, type BenchServer } from '../servers.js';
import { now, percentile, sleep } from '../stats.js';
import type { SubscriberCommand, SubscriberReport } from '../subscriber-process.js';
import { cohortMembers } from './fanout.js';

/** One server process's share of the row. */
export interface SpreadServerResult {
  pid: number;
  subscribers: number;
  connected: number;
  /** Connections refused or lost, and subscriptions refused, as its subscriber process saw them. */
  failed: number;
  received: number;
  p50: number;
  p99: number;
  rssBeforeBytes: number;
  rssAfterBytes: number;
  /** RSS growth over the second half of this process's subscribers ÷ their number (as the idle row). */
  marginalBytesPerSubscriber: number;
  /** V8 heap in use (the server's /metrics), grown over the same half ÷ the same number. */
  marginalHeapBytesPerSubscriber: number;
}

export interface SpreadResult {
  subscribers: number;
  connected: number;
  received: number;
  connectSeconds: number;
  releaseMs: number;
  /** From sending the release to each subscriber's receipt, Date.now() in every process (ms resolution). */
  p50: number;
  p99: number;
  max: number;
  servers: SpreadServerResult[];
}

type Sample = { members: number; rss: number; heap: number };

/** A subscriber child process, one per server, and its reports in the order they come. */
class SubscriberProcess {
  private readonly child: ChildProcess;
  private readonly reports: SubscriberReport[] = [];
  private wake = () => {};
  private exited = false;

  constructor() {
    this.child = fork(join(projectRoot, 'bench', 'subscriber-process.ts'), {
      cwd: projectRoot,
      execArgv: ['--import', 'tsx'],
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    });
    this.child.on('message', (report: SubscriberReport) => {
      this.reports.push(report);
      this.wake();
    });
    this.child.once('exit', () => {
      this.exited = true;
      this.wake();
    });
  }

  /** Sends `command` and resolves with its answer (of type `answer`). */
  async ask<T extends SubscriberReport['type']>(
    command: SubscriberCommand,
    answer: T,
    timeoutMs: number,
  ): Promise<Extract<SubscriberReport, { type: T }>> {
    this.child.send(command);
    const deadline = now() + timeoutMs;
    for (;;) {
      const index = this.reports.findIndex((report) => report.type === answer);
      if (index >= 0) return this.reports.splice(index, 1)[0] as Extract<SubscriberReport, { type: T }>;
      if (this.exited) throw new Error(`subscriber process ${this.child.pid} exited before its ${answer} report`);
      if (now() > deadline)
        throw new Error(`subscriber process ${this.child.pid}: no ${answer} report in ${timeoutMs} ms`);
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, Math.max(1, deadline - now()));
        this.wake = () => {
          clearTimeout(timer);
          resolve();
        };
      });
    }
  }

  async close(): Promise<void> {
    if (this.exited) return;
    const exit = once(this.child, 'exit');
    await this.ask({ type: 'close' }, 'closed', 60_000).catch(() => this.child.kill());
    await exit;
  }
}

async function sample(server: BenchServer): Promise<Sample> {
  // Memory the server holds, not garbage it has yet to collect (see collect-garbage.ts).
  await server.collectGarbage();
  return {
    members: await cohortMembers(server.graphqlUrl),
    rss: rssBytes(server.pid),
    heap: await serverMetric(server.graphqlUrl, 'nodejs_heap_size_used_bytes'),
  };
}

/**
 * `subscribers` graphql-ws connections split evenly over two server processes sharing one
 * PostgreSQL, each half held by a child process of its own (so that no process passes its
 * open-file limit), all following one lease live; one release sent to the first server, which
 * reaches the second through PostgreSQL NOTIFY as any event does. Per server: what one more idle
 * subscriber costs; over all: how long until each subscriber has the release.
 */
export async function spread(
  servers: [BenchServer, BenchServer],
  resourceType: string,
  options: { subscribers: number; batch: number; timeoutMs: number },
): Promise<SpreadResult> {
  const leaseId = await activeLease(servers[0].graphqlUrl, resourceType);
  const children = servers.map(() => new SubscriberProcess());
  try {
    await sleep(1_000);
    const before = await Promise.all(servers.map(sample));
    const perServer = servers.map(
      (_, i) => Math.floor(options.subscribers / 2) + (i < options.subscribers % 2 ? 1 : 0),
    );
    let connectMs = 0;
    /** Opens `counts[i]` more subscribers on server i; resolves once the server counts them in. */
    const openMore = async (counts: number[]): Promise<Sample[]> => {
      const start = now();
      const opened = await Promise.all(
        children.map((child, i) =>
          child.ask(
            { type: 'open', graphqlUrl: servers[i]!.graphqlUrl, leaseId, count: counts[i]!, batch: options.batch },
            'opened',
            options.timeoutMs,
          ),
        ),
      );
      const deadline = now() + 30_000;
      for (const [i, server] of servers.entries()) {
        while ((await cohortMembers(server.graphqlUrl)) - before[i]!.members < opened[i]!.connected && now() < deadline)
          await sleep(50);
      }
      connectMs += now() - start;
      // As the idle row: memory read once the server has settled from the connections' work.
      await sleep(2_000);
      return Promise.all(servers.map(sample));
    };
    const half = await openMore(perServer.map((n) => Math.floor(n / 2)));
    const after = await openMore(perServer.map((n) => n - Math.floor(n / 2)));

    const releaseSentAt = Date.now();
    await releaseLease(servers[0].graphqlUrl, leaseId);
    const releaseMs = Date.now() - releaseSentAt;
    const received = await Promise.all(
      children.map((child) =>
        child.ask({ type: 'collect', timeoutMs: options.timeoutMs }, 'received', options.timeoutMs + 10_000),
      ),
    );
    const latencies = received.map(({ at }) => at.map((t) => t - releaseSentAt));
    const all = latencies.flat();
    const connected = (i: number) => after[i]!.members - before[i]!.members;
    return {
      subscribers: options.subscribers,
      connected: servers.reduce((sum, _, i) => sum + connected(i), 0),
      received: all.length,
      connectSeconds: connectMs / 1_000,
      releaseMs,
      p50: percentile(all, 50),
      p99: percentile(all, 99),
      max: percentile(all, 100),
      servers: servers.map((server, i) => {
        const secondHalf = Math.max(1, after[i]!.members - half[i]!.members);
        return {
          pid: server.pid,
          subscribers: perServer[i]!,
          connected: connected(i),
          failed: received[i]!.failed,
          received: latencies[i]!.length,
          p50: percentile(latencies[i]!, 50),
          p99: percentile(latencies[i]!, 99),
          rssBeforeBytes: before[i]!.rss,
          rssAfterBytes: after[i]!.rss,
          marginalBytesPerSubscriber: (after[i]!.rss - half[i]!.rss) / secondHalf,
          marginalHeapBytesPerSubscriber: (after[i]!.heap - half[i]!.heap) / secondHalf,
        };
      }),
    };
  } finally {
    await Promise.all(children.map((child) => child.close()));
  }
}
