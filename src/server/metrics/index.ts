import {
  createCounter,
  createHistogram,
  usePrometheus,
  type FillLabelsFnParams,
} from '@graphql-yoga/plugin-prometheus';
import { getOperationAST } from 'graphql';
import { isAsyncIterable, type Plugin } from 'graphql-yoga';
import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client';
import type { Database } from '../../db/database.js';
import type { PassObserver } from '../../services/index.js';
import { describeOperation, UNPARSED } from '../operation-log.js';
import { registerDomainMetrics, type DomainMetrics } from './domain.js';

export const METRICS_PATH = '/metrics';

export interface Metrics extends DomainMetrics {
  registry: Registry;
  /** Yoga's Prometheus plugin on this registry (operation counts and durations, /metrics), and open subscriptions. */
  plugins: Plugin[];
  /** From an event reaching this process to its hand-over to one subscriber. */
  deliveryLag: Histogram;
  /** WebSockets closed because their unsent data passed the bound. */
  slowConsumersClosed: Counter;
  /** Requests and operations refused by load shedding, by scope (process, principal). */
  refused: Counter<'scope'>;
  inFlight: Gauge;
  /** The process bound now: MAX_IN_FLIGHT, or where the adaptive limit stands. */
  inFlightLimit: Gauge;
  /** How late the last event-loop check fired. */
  eventLoopLag: Gauge;
  /** Where the WebSocket server's shared executions are read from at scrape time. */
  readCohorts(read: () => { cohorts: number; members: number }): void;
  /** The scheduling passes this process runs: how long each took and how many leases it granted. */
  passes: PassObserver;
  /** Transactions run again after PostgreSQL failed them as a deadlock's victim, by what they were. */
  deadlockRetries: Counter<'what'>;
}

/**
 * An operation's labels, named as the operation log names it: `(anonymous)` without a name, the
 * operation the request chose in a document of several, and `(unparsed)` name and type when its
 * text did not parse. The plugin's own labels would say "Anonymous", take the document's first
 * definition whatever the request chose, and "undefined" for a syntax error.
 */
function operationLabels(params: FillLabelsFnParams, context?: { params?: { operationName?: string | null } }) {
  if (!params.document) return { operationName: UNPARSED, operationType: UNPARSED };
  // The plugin fills a missing name with "Anonymous": unless an operation is called that, none was
  // asked for. The request's own params, where the hook has them, say it exactly.
  const asked =
    context?.params?.operationName ??
    (params.operationName && getOperationAST(params.document, params.operationName) ? params.operationName : undefined);
  const { operation, type } = describeOperation(params.document, asked);
  return { operationName: operation, operationType: type };
}

const operationHistogram = <Phase extends string>(
  registry: Registry,
  name: string,
  help: string,
  phases: [Phase, ...Phase[]],
) =>
  createHistogram({
    registry,
    histogram: { name, help, labelNames: ['operationType', 'operationName'] },
    fillLabelsFn: operationLabels,
    phases,
  });

/**
 * Counts a subscription on `gauge` from its first next() (it streams: a client, an SSE response or
 * a cohort reads it) until it ends, once, however it ends: done, failed, or returned (its client
 * went away). A subscription created but never read (refused with 406) is never counted; Yoga's
 * own onEnd misses a failed one (it runs only on done or return()).
 */
function countedWhileStreaming<T, L extends string>(
  source: AsyncIterable<T>,
  gauge: Gauge<L>,
  labels: Partial<Record<L, string>>,
): AsyncIterableIterator<T> {
  let iterator: AsyncIterator<T> | undefined;
  const inner = () => (iterator ??= source[Symbol.asyncIterator]());
  let state: 'unread' | 'streaming' | 'ended' = 'unread';
  const end = () => {
    if (state === 'streaming') gauge.dec(labels);
    state = 'ended';
  };
  const counted: AsyncIterableIterator<T> = {
    next: async (...args: [] | [unknown]) => {
      if (state === 'unread') {
        state = 'streaming';
        gauge.inc(labels);
      }
      try {
        const step = await inner().next(...args);
        if (step.done) end();
        return step;
      } catch (error) {
        end();
        throw error;
      }
    },
    return: async (value?: unknown) => {
      end();
      return (await inner().return?.(value)) ?? ({ done: true, value } as IteratorResult<T>);
    },
    throw: async (error?: unknown) => {
      end();
      if (!inner().throw) throw error;
      return inner().throw!(error);
    },
    [Symbol.asyncIterator]: () => counted,
  };
  return counted;
}

/**
 * One registry per server, not prom-client's global one: tests run several servers in a process,
 * and each must report only its own.
 */
export function createMetrics(db: Database): Metrics {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry });
  const domain = registerDomainMetrics(registry, db);
  const subscriptions = new Gauge({
    name: 'drydock_subscriptions_open',
    help: 'GraphQL subscriptions open in this process, by operation name.',
    labelNames: ['operation'],
    registers: [registry],
  });
  const prometheus = usePrometheus({
    registry,
    endpoint: METRICS_PATH,
    metrics: {
      // Every metric labelled by operation is made here, with the labels above.
      graphql_envelop_request: createCounter({
        registry,
        counter: {
          name: 'graphql_envelop_request',
          help: 'Counts the amount of GraphQL requests executed through Envelop',
          labelNames: ['operationType', 'operationName'],
        },
        fillLabelsFn: operationLabels,
        phases: ['execute', 'subscribe'],
      }),
      graphql_envelop_request_duration: operationHistogram(
        registry,
        'graphql_envelop_request_duration',
        'Time spent on running the GraphQL operation from parse to execute',
        ['execute', 'subscribe'],
      ),
      graphql_envelop_error_result: createCounter({
        registry,
        counter: {
          name: 'graphql_envelop_error_result',
          help: 'Counts the amount of errors reported from all phases',
          labelNames: ['operationType', 'operationName', 'path', 'phase'],
        },
        fillLabelsFn: (params, context) => ({
          ...operationLabels(params, context),
          ...(params.errorPhase ? { phase: params.errorPhase } : {}),
          ...(params.error?.path ? { path: params.error.path.join('.') } : {}),
        }),
        phases: ['parse', 'validate', 'context', 'execute', 'subscribe'],
      }),
      graphql_envelop_phase_parse: operationHistogram(
        registry,
        'graphql_envelop_phase_parse',
        'Time spent on running GraphQL "parse" function',
        ['parse'],
      ),
      graphql_envelop_phase_validate: operationHistogram(
        registry,
        'graphql_envelop_phase_validate',
        'Time spent on running GraphQL "validate" function',
        ['validate'],
      ),
      graphql_envelop_phase_context: operationHistogram(
        registry,
        'graphql_envelop_phase_context',
        'Time spent on building the GraphQL context',
        ['context'],
      ),
      graphql_envelop_phase_execute: operationHistogram(
        registry,
        'graphql_envelop_phase_execute',
        'Time spent on running the GraphQL "execute" function',
        ['execute'],
      ),
      graphql_envelop_phase_subscribe: operationHistogram(
        registry,
        'graphql_envelop_phase_subscribe',
        'Time spent on running the GraphQL "subscribe" function',
        ['subscribe'],
      ),
      graphql_yoga_http_duration: createHistogram({
        registry,
        histogram: {
          name: 'graphql_yoga_http_duration',
          help: 'Time spent on HTTP connection',
          labelNames: ['operationName', 'operationType', 'method', 'statusCode', 'url'],
        },
        fillLabelsFn: (params, { request, response }: { request: Request; response: Response }) => ({
          ...operationLabels(params),
          method: request.method,
          statusCode: response.status,
          url: request.url,
        }),
        phases: ['request'],
      }),
      // On by default in the plugin, off here: each walks or sorts on every request (the
      // deprecated-field counter visits the whole document, the summary keeps a sorted sample)
      // for something the histograms above already answer or this schema does not have.
      graphql_envelop_deprecated_field: false,
      graphql_envelop_request_time_summary: false,
      graphql_envelop_schema_change: false,
    },
  });
  const countSubscriptions: Plugin = {
    onSubscribe: ({ args }) => ({
      onSubscribeResult({ result, setResult }) {
        if (!isAsyncIterable(result)) return;
        const labels = { operation: describeOperation(args.document, args.operationName).operation };
        setResult(countedWhileStreaming(result, subscriptions, labels));
      },
    }),
    // A subscription over HTTP that no result processor takes (`accept: application/json` only)
    // is answered 406 and its result dropped: Yoga never iterates it nor calls its return(), so
    // the plugins' onEnd hooks (the operation log's line) would never run. Yoga's own processors
    // (useResultProcessors) come before every plugin of ours, so here the choice is made; ended
    // here, what its start allocated is let go at once.
    onResultProcess({ result, resultProcessor }) {
      if (resultProcessor || !isAsyncIterable(result)) return;
      void Promise.resolve(result[Symbol.asyncIterator]().return?.()).catch(() => {});
    },
  };
  let cohorts = () => ({ cohorts: 0, members: 0 });
  new Gauge({
    name: 'drydock_subscription_cohorts',
    help: 'Shared subscription executions running in this process (one per operation, variables and visibility).',
    registers: [registry],
    collect() {
      this.set(cohorts().cohorts);
    },
  });
  new Gauge({
    name: 'drydock_subscription_cohort_members',
    help: 'graphql-ws subscriptions served by a shared execution in this process.',
    registers: [registry],
    collect() {
      this.set(cohorts().members);
    },
  });
  const passSeconds = new Histogram({
    name: 'drydock_scheduling_pass_seconds',
    help: "Scheduling passes this process ran, from starting the pass's transaction (its turn included) to commit, by resource type.",
    labelNames: ['resource_type'],
    // A pass is a few statements and a commit: milliseconds, unless its turn or the database waits.
    buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 5],
    registers: [registry],
  });
  const passGrants = new Histogram({
    name: 'drydock_scheduling_pass_grants',
    help: 'Leases each scheduling pass this process ran granted (gang parts each), by resource type.',
    labelNames: ['resource_type'],
    buckets: [0, 1, 2, 5, 10, 20, 50, 100, 200],
    registers: [registry],
  });
  return {
    ...domain,
    registry,
    passes: {
      passed({ resourceType, seconds, granted }) {
        passSeconds.observe({ resource_type: resourceType }, seconds);
        passGrants.observe({ resource_type: resourceType }, granted);
      },
    },
    readCohorts: (read) => (cohorts = read),
    plugins: [prometheus, countSubscriptions],
    deliveryLag: new Histogram({
      name: 'drydock_event_delivery_lag_seconds',
      help: 'From an event reaching this process to its hand-over to a subscriber (queueing behind slower events).',
      buckets: [0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5],
      registers: [registry],
    }),
    deadlockRetries: new Counter({
      name: 'drydock_deadlock_retries_total',
      help: "Callers' transactions run again after PostgreSQL failed them as a deadlock's victim, by what they were (a lock-order fault to report if it grows).",
      labelNames: ['what'],
      registers: [registry],
    }),
    slowConsumersClosed: new Counter({
      name: 'drydock_ws_slow_consumers_closed_total',
      help: 'WebSockets closed (code 4008) because more than WS_MAX_BUFFERED_BYTES waited to be sent.',
      registers: [registry],
    }),
    refused: new Counter({
      name: 'drydock_requests_refused_total',
      help: 'GraphQL requests and operations refused at once by load shedding, by scope (process: 503, principal: 429).',
      labelNames: ['scope'],
      registers: [registry],
    }),
    inFlight: new Gauge({
      name: 'drydock_requests_in_flight',
      help: 'GraphQL requests and operations running now in this process (bounded by drydock_requests_in_flight_limit).',
      registers: [registry],
    }),
    inFlightLimit: new Gauge({
      name: 'drydock_requests_in_flight_limit',
      help: 'How many GraphQL requests this process admits at once now: MAX_IN_FLIGHT, or the adaptive limit between MIN_IN_FLIGHT and it.',
      registers: [registry],
    }),
    eventLoopLag: new Gauge({
      name: 'drydock_event_loop_lag_seconds',
      help: 'How late the last event-loop check fired (adaptive admission refuses new work while it stays over EVENT_LOOP_LAG_LIMIT_MS).',
      registers: [registry],
    }),
  };
}
