/** Everything a run's size depends on; --quick shrinks every row to a CI smoke test. */
export interface BenchSettings {
  quick: boolean;
  /** The grant and cycle rows on the embedded PGlite (one server process, no raw floor). */
  pglite: boolean;
  /** Leases waiting in the queue of the backlog row. */
  backlog: number;
  poolSize: number;
  workerConcurrency: number;
  rawSeconds: number;
  grantRate: number;
  grantSeconds: number;
  cycleClients: number;
  cycleSeconds: number;
  maxCycles: number;
  handoffs: number;
  handoffSeconds: number;
  subscribers: number;
  subscriberBatch: number;
  /** Subscribers of the idle-memory row: what one process's open-file limit (20,000 here) can hold. */
  idleSubscribers: number;
  /** Subscribers of the spread row, split evenly over its two server processes. */
  spreadSubscribers: number;
  overloadSeconds: number;
  /** The overload row's server limits (--max-in-flight=N[,per-principal]); the server's defaults when not given. */
  overloadLimits: { maxInFlight: number; maxInFlightPerPrincipal: number } | null;
  /** The overload row's MIN_IN_FLIGHT (--min-in-flight=N); the server's default when not given. */
  overloadMinInFlight: number | null;
  /** The rows to run (--rows=fanout,idle,...); every row when not given. */
  rows: Set<string> | null;
  poolSizes: number[];
  poolRate: number;
  poolSeconds: number;
  poolFillSeconds: number;
}

export function benchSettings(argv: string[]): BenchSettings {
  const quick = argv.includes('--quick');
  const number = (name: string, full: number, small: number) => {
    const given = argv.find((arg) => arg.startsWith(`--${name}=`));
    return given ? Number(given.split('=')[1]) : quick ? small : full;
  };
  return {
    quick,
    pglite: argv.includes('--pglite'),
    backlog: number('backlog', 1_000, 200),
    poolSize: number('pool-size', 10, 10),
    workerConcurrency: number('worker-concurrency', 4, 4),
    rawSeconds: number('raw-seconds', 10, 2),
    grantRate: number('rate', 200, 50),
    grantSeconds: number('grant-seconds', 15, 3),
    cycleClients: number('cycle-clients', 16, 8),
    cycleSeconds: number('cycle-seconds', 15, 3),
    maxCycles: number('max-cycles', 100_000, 5_000),
    handoffs: number('handoffs', 200, 20),
    handoffSeconds: number('handoff-seconds', 30, 5),
    subscribers: number('subscribers', 5_000, 200),
    subscriberBatch: number('subscriber-batch', 250, 100),
    idleSubscribers: number('idle-subscribers', 19_000, 500),
    spreadSubscribers: number('spread-subscribers', 20_000, 500),
    overloadSeconds: number('overload-seconds', 15, 3),
    overloadLimits: ((given) => {
      if (!given) return null;
      const [total, perPrincipal] = given.split('=')[1]!.split(',').map(Number);
      return { maxInFlight: total!, maxInFlightPerPrincipal: perPrincipal ?? total! };
    })(argv.find((arg) => arg.startsWith('--max-in-flight='))),
    overloadMinInFlight: ((given) => (given ? Number(given.split('=')[1]) : null))(
      argv.find((arg) => arg.startsWith('--min-in-flight=')),
    ),
    rows: ((given) => (given ? new Set(given.split('=')[1]!.split(',')) : null))(
      argv.find((arg) => arg.startsWith('--rows=')),
    ),
    poolSizes:
      argv
        .find((arg) => arg.startsWith('--pool-sizes='))
        ?.split('=')[1]
        ?.split(',')
        .map(Number) ?? (quick ? [10, 100, 300] : [100, 1_000, 10_000]),
    poolRate: number('pool-rate', 50, 20),
    poolSeconds: number('pool-seconds', 10, 3),
    poolFillSeconds: number('pool-fill-seconds', 90, 15),
  };
}
