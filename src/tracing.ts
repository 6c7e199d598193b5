import type { TracerProvider } from '@opentelemetry/api';
import type { Logger } from './logger.js';

export interface Tracing {
  provider: TracerProvider;
  /** Sends the spans still buffered; call before the process exits. */
  shutdown(): Promise<void>;
}

/**
 * OpenTelemetry's Node SDK, exporting spans to the OTLP endpoint it reads from the standard
 * OTEL_* variables (OTEL_EXPORTER_OTLP_ENDPOINT, OTEL_EXPORTER_OTLP_PROTOCOL, OTEL_TRACES_SAMPLER,
 * ...). Traces only: metrics are Prometheus's (/metrics), logs are pino's. Loaded only when an
 * endpoint is configured, since the SDK costs start-up time that most runs do not need.
 */
export async function startTracing(serviceName: string, logger: Logger): Promise<Tracing> {
  const [{ NodeSDK }, { trace }] = await Promise.all([import('@opentelemetry/sdk-node'), import('@opentelemetry/api')]);
  const sdk = new NodeSDK({ serviceName, metricReaders: [], logRecordProcessors: [], instrumentations: [] });
  sdk.start();
  logger.info(`tracing: spans go to the OTLP endpoint as service "${serviceName}"`);
  return { provider: trace.getTracerProvider(), shutdown: () => sdk.shutdown() };
}
