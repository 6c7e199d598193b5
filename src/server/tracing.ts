import { useOpenTelemetry } from '@envelop/opentelemetry';
import { SpanKind, type TracerProvider } from '@opentelemetry/api';
import type { Plugin } from 'graphql-yoga';

/**
 * A server span per operation with its name and type. No variables, document, results or
 * resolver arguments: any of them may hold a token, a credential or a host's connection details,
 * and a span leaves the process for whatever collector is configured.
 */
export function tracingPlugin(provider: TracerProvider): Plugin {
  return useOpenTelemetry(
    { resolvers: false, defaultResolvers: false, variables: false, result: false, document: false },
    provider,
    SpanKind.SERVER,
  ) as Plugin;
}
