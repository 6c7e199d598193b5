// Secrets in a blueprint's config (an external provisioner's token) are write-only: the API
// returns the config without them, to everyone, admins too, as it never returns a credential's
// secret. Each implementation names its secret keys; `secretsSet` says which of them are set, so
// an operator can tell a token is configured without seeing it.

export interface SecretKeys {
  secretConfigKeys?: readonly string[];
}

type JsonObject = Record<string, unknown>;

const isObject = (value: unknown): value is JsonObject =>
  typeof value === 'object' && value !== null && !Array.isArray(value);

export function redactConfig(implementation: SecretKeys | undefined, config: unknown): unknown {
  if (!isObject(config)) return config;
  const secret = new Set(implementation?.secretConfigKeys ?? []);
  return Object.fromEntries(Object.entries(config).filter(([key]) => !secret.has(key)));
}

export function secretsSet(implementation: SecretKeys | undefined, config: unknown): string[] {
  if (!isObject(config)) return [];
  return (implementation?.secretConfigKeys ?? []).filter((key) => config[key] !== undefined);
}
