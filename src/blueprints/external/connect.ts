import { ProvisionerClient } from './client.js';
import { tokenOf, type ExternalConfig } from './config.js';

/** A client for one hook's calls (built per call, so that a config edit or token rotation applies at once). */
export function connect(config: ExternalConfig, signal?: AbortSignal): ProvisionerClient {
  return new ProvisionerClient({
    url: config.url,
    token: tokenOf(config),
    timeoutMs: config.callTimeoutMs,
    maxRetryAfterMs: config.maxPollIntervalMs,
    signal,
  });
}
