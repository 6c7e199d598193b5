import type { Plugin } from 'graphql-yoga';
import type { Logger } from './logger.js';

export interface Tracing {
  /** A server span per operation (and its phases), for Yoga. */
  plugin: Plugin;
  /** Sends the spans still buffered; call before the process exits. */
  shutdown(): Promise<void>;
}

/**
 * OpenTelemetry's Node SDK, exporting spans to the OTLP endpoint it reads from the standard
 * OTEL_* variables (OTEL_EXPORTER_OTLP_ENDPOINT, OTEL_EXPORTER_OTLP_PROTOCOL, OTEL_TRACES_SAMPLER,
 * ...). Traces only: metrics are Prometheus's (/metrics), logs are pino's. Loaded only when an
 * endpoint is configured: the SDK and the envelop plugin cost start-up time most runs do not need.
 */
export async function startTracing(serviceName: string, logger: Logger): Promise<Tracing> {
  const [{ NodeSDK }, { SpanKind, trace }, { useOpenTelemetry }] = await Promise.all([
    import('@opentelemetry/sdk-node'),
    import('@opentelemetry/api'),
    import('@envelop/opentelemetry'),
  ]);
  const sdk = new NodeSDK({ serviceName, metricReaders: [], logRecordProcessors: [], instrumentations: [] });
  sdk.start();
  logger.info(`tracing: spans go to the OTLP endpoint as service "${serviceName}"`);
  // No variables, document, results or resolver arguments on a span: any of them may hold a
  // token, a credential or a host's connection details, and spans leave the process.
  const plugin = useOpenTelemetry(
    { resolvers: false, defaultResolvers: false, variables: false, result: false, document: false },
    trace.getTracerProvider(),
    SpanKind.SERVER,
  ) as Plugin;
  return { plugin, shutdown: () => sdk.shutdown() };
}
