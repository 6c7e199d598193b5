import { spawn, type ChildProcess } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { projectRoot } from '../src/db/migrations-folder.js';
import { garbageCollector } from './collect-garbage.js';

export interface BenchServer {
  child: ChildProcess;
  pid: number;
  url: string;
  graphqlUrl: string;
  /** From spawning the process to its "listening" line (migrations included). */
  startToReadyMs: number;
  /** A full garbage collection in the server, done (see collect-garbage.ts). */
  collectGarbage(): Promise<void>;
  stop(): Promise<number | string | null>;
}

export interface ServerSettings {
  /** PostgreSQL; without it the server runs on PGlite in `dataDir`. */
  databaseUrl?: string;
  dataDir?: string;
  poolSize: number;
  workerConcurrency: number;
  /** Keeps load shedding on (the overload row): its defaults, or these limits; otherwise it is lifted. */
  shedding?: boolean | { maxInFlight: number; maxInFlightPerPrincipal: number };
  /** More of the server's environment, over what these settings give (e.g. MIN_IN_FLIGHT for the overload row). */
  env?: Record<string, string>;
}

/**
 * The real server as `npm start` runs it (compiled: `npm run bench` builds first), in its own process, with the rate limit and the body size
 * limit lifted.
 * BENCH_SERVER_NODE_ARGS adds node flags (e.g. "--cpu-prof --cpu-prof-dir=prof"), which Node
 * does not accept through NODE_OPTIONS.
 */
export async function startBenchServer(settings: ServerSettings, timeoutMs = 180_000): Promise<BenchServer> {
  const nodeArgs = (process.env['BENCH_SERVER_NODE_ARGS'] ?? '').split(' ').filter(Boolean);
  const spawnedAt = performance.now();
  // Where the inspector listens once collectGarbage opens it; nothing listens before.
  const inspectPort = '--inspect-port=127.0.0.1:0';
  const child = spawn(process.execPath, [inspectPort, ...nodeArgs, join(projectRoot, 'dist', 'main.js')], {
    cwd: projectRoot,
    env: {
      PATH: process.env['PATH'] ?? '',
      PORT: '0',
      ...(settings.databaseUrl ? { DATABASE_URL: settings.databaseUrl } : {}),
      ...(settings.dataDir ? { DATA_DIR: settings.dataDir } : {}),
      DATABASE_POOL_SIZE: String(settings.poolSize),
      WORKER_CONCURRENCY: String(settings.workerConcurrency),
      RATE_LIMIT_PER_MINUTE: '1000000000',
      // Lifted like the rate limit: the rows measure the service, not its load shedding.
      ...(!settings.shedding
        ? { MAX_IN_FLIGHT: '1000000', MAX_IN_FLIGHT_PER_PRINCIPAL: '1000000', ADAPTIVE_IN_FLIGHT: 'false' }
        : typeof settings.shedding === 'object'
          ? {
              MAX_IN_FLIGHT: String(settings.shedding.maxInFlight),
              MAX_IN_FLIGHT_PER_PRINCIPAL: String(settings.shedding.maxInFlightPerPrincipal),
            }
          : {}),
      // The 10,000-host pool's blueprint is one request of about 700 KB.
      MAX_BODY_BYTES: String(16 * 2 ** 20),
      LOG_LEVEL: 'warn',
      SHUTDOWN_TIMEOUT_MS: '3000',
      // The server's own default unless the bench's environment sets it: WARM_UP_LEASES=0 npm run
      // bench measures servers that start cold.
      ...(process.env['WARM_UP_LEASES'] ? { WARM_UP_LEASES: process.env['WARM_UP_LEASES'] } : {}),
      ...settings.env,
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  child.stdout.on('data', (chunk: Buffer) => (output += chunk.toString()));
  child.stderr.on('data', (chunk: Buffer) => (output = (output + chunk.toString()).slice(-20_000)));
  const exited = new Promise<number | string | null>((resolve) =>
    child.once('exit', (code, signal) => resolve(code ?? signal)),
  );
  const url = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`server did not start in ${timeoutMs} ms:\n${output}`)), timeoutMs);
    child.stdout.on('data', () => {
      const match = /drydock listening on (\S+)/.exec(output);
      if (match?.[1]) {
        clearTimeout(timer);
        resolve(match[1]);
      }
    });
    void exited.then((code) => {
      clearTimeout(timer);
      reject(new Error(`server exited with ${code} before listening:\n${output}`));
    });
  });
  let stopping = false;
  // A server that dies under load says why, instead of the run failing somewhere else later.
  void exited.then((code) => {
    if (!stopping)
      process.stderr.write(`[bench] server ${child.pid} exited with ${code}; its last output:\n${output}\n`);
  });
  return {
    child,
    pid: child.pid!,
    url,
    graphqlUrl: `${url}/graphql`,
    startToReadyMs: performance.now() - spawnedAt,
    collectGarbage: garbageCollector(child, () => output),
    stop() {
      stopping = true;
      child.kill('SIGTERM');
      return exited;
    },
  };
}

/** Resident memory of a process in bytes, from /proc (Linux only). */
export function rssBytes(pid: number): number {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const match = /VmRSS:\s+(\d+) kB/.exec(status);
  return match ? Number(match[1]) * 1024 : Number.NaN;
}

/** CPU time (user + system) a process has used so far, in ms, from /proc (Linux only; 10 ms ticks). */
export function cpuMs(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  // The command name (field 2) may hold spaces; the fields after its closing parenthesis do not.
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return ((Number(fields[11]) + Number(fields[12])) * 1_000) / 100;
}

/**
 * A process's read and write system calls so far (every socket read and write among them), and
 * its CPU split into user and system time in ms, from /proc (Linux only). A message to
 * PostgreSQL or a client is a write that wakes another process, a kernel cost that counting
 * them shows where CPU alone does not.
 */
export function syscallReading(pid: number): { reads: number; writes: number; userMs: number; systemMs: number } {
  const io = readFileSync(`/proc/${pid}/io`, 'utf8');
  const count = (name: string) => Number(new RegExp(`${name}:\\s+(\\d+)`).exec(io)?.[1] ?? Number.NaN);
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return {
    reads: count('syscr'),
    writes: count('syscw'),
    userMs: (Number(fields[11]) * 1_000) / 100,
    systemMs: (Number(fields[12]) * 1_000) / 100,
  };
}

/**
 * CPU of the PostgreSQL backends serving `database`, in ms: the live ones, and those that have
 * exited (a pool closing an idle connection), whose CPU the postmaster collects when it reaps
 * them. Other databases' live backends and the server's shared processes are left out; exited
 * backends of other databases are not, so run it where nothing else uses the server.
 */
export function postgresCpuMs(database: string): number {
  let total = 0;
  const parents = new Map<number, number>();
  const collected = new Map<number, number>();
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      if (readFileSync(`/proc/${entry}/comm`, 'utf8').trim() !== 'postgres') continue;
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      parents.set(Number(entry), Number(fields[1]));
      collected.set(Number(entry), ((Number(fields[13]) + Number(fields[14])) * 1_000) / 100);
      // A backend on its way out has no command line left, and until the postmaster reaps it its
      // CPU is in neither place: counted here, or a reading taken then comes out short.
      const cmdline = readFileSync(`/proc/${entry}/cmdline`, 'utf8');
      if (cmdline !== '' && !cmdline.includes(` ${database} `)) continue;
      total += cpuMs(Number(entry));
    } catch {
      // gone meanwhile
    }
  }
  // The postmaster: the one PostgreSQL process whose parent is not one.
  for (const [pid, parent] of parents) if (!parents.has(parent)) total += collected.get(pid) ?? 0;
  return total;
}

/** The machine's CPU time so far, busy and in all (every core), in ticks from /proc/stat (Linux only). */
export function machineTicks(): { busy: number; total: number } {
  const first = readFileSync('/proc/stat', 'utf8').split('\n', 1)[0]!;
  const ticks = first.trim().split(/\s+/).slice(1).map(Number);
  const total = ticks.reduce((sum, t) => sum + t, 0);
  // idle and iowait (fields 4 and 5) are the time no process ran.
  return { busy: total - ticks[3]! - ticks[4]!, total };
}

/** The share of the machine's CPU (all cores) that was busy between two readings of machineTicks. */
export function busyShare(before: { busy: number; total: number }, after: { busy: number; total: number }): number {
  return (after.busy - before.busy) / Math.max(1, after.total - before.total);
}
