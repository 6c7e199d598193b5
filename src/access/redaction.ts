// Secrets in a blueprint's config (an external provisioner's token) are write-only: the API
// returns the config without them, to everyone, admins too, as it never returns a credential's
// secret. Each implementation names its secret keys; `secretsSet` says which of them are set, so
// an operator can tell a token is configured without seeing it.
//
// A URL's user name and password are secrets wherever they appear, whatever the key: validation
// refuses them in new configs, but a row stored before (or written to the database directly) may
// hold them, and naming the keys per implementation would miss one nested or added later. So
// every string of the config is returned with the credentials of any URL in it masked.

export interface SecretKeys {
  secretConfigKeys?: readonly string[];
}

type JsonObject = Record<string, unknown>;

const isObject = (value: unknown): value is JsonObject =>
  typeof value === 'object' && value !== null && !Array.isArray(value);

/** What stands for a URL's user name and password: shows that some were set, not what they are. */
export const MASKED_USERINFO = '***';

// `scheme://userinfo@`, up to the last `@` before the host's end, as the URL parser reads it.
const USERINFO = /([a-z][a-z0-9+.-]*:[/\\]{2})[^\s/\\?#]*@/gi;

/**
 * `text` with the user name and password of every URL in it masked. The pattern finds URLs inside
 * longer text; a text that is a URL is also read as the URL parser reads it (which knows spellings
 * the pattern does not, such as `https:user:pass@host`), so that what fetch would send as
 * credentials is never returned.
 */
export function withoutUrlCredentials(text: string): string {
  const masked = text.replace(USERINFO, `$1${MASKED_USERINFO}@`);
  let url: URL;
  try {
    url = new URL(masked);
  } catch {
    return masked;
  }
  if (url.password === '' && (url.username === '' || url.username === MASKED_USERINFO)) return masked;
  url.username = MASKED_USERINFO;
  url.password = '';
  return url.href;
}

function withoutCredentials(value: unknown): unknown {
  if (typeof value === 'string') return withoutUrlCredentials(value);
  if (Array.isArray(value)) return value.map(withoutCredentials);
  if (isObject(value))
    return Object.fromEntries(
      Object.entries(value).map(([key, inner]) => [withoutUrlCredentials(key), withoutCredentials(inner)]),
    );
  return value;
}

export function redactConfig(implementation: SecretKeys | undefined, config: unknown): unknown {
  if (!isObject(config)) return withoutCredentials(config);
  const secret = new Set(implementation?.secretConfigKeys ?? []);
  return withoutCredentials(Object.fromEntries(Object.entries(config).filter(([key]) => !secret.has(key))));
}

export function secretsSet(implementation: SecretKeys | undefined, config: unknown): string[] {
  if (!isObject(config)) return [];
  return (implementation?.secretConfigKeys ?? []).filter((key) => config[key] !== undefined);
}
