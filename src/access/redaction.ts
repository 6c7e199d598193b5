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

// `scheme://userinfo@`: a scheme (a letter, then letters, digits, `+`, `.` or `-`), `:`, two
// slashes of either kind, then everything up to the last `@` before the host's end (a space, a
// slash of either kind, `?` or `#`), as the URL parser reads it. Found by a scan, not by one
// regular expression: a backtracking engine tries the scheme and the userinfo again from every
// character of a long run of letters without `@`, in time quadratic in the run, and a config
// string holds whatever a client put in it.
const SEPARATOR = /:[/\\]{2}/g;
const HOST_END = /[\s/\\?#]/g;

const isLetter = (c: number) => (c >= 0x41 && c <= 0x5a) || (c >= 0x61 && c <= 0x7a);
const isSchemeChar = (c: number) => isLetter(c) || (c >= 0x30 && c <= 0x39) || c === 0x2b || c === 0x2d || c === 0x2e;

/**
 * `text` with every `scheme://userinfo@` masked, leftmost first and never overlapping. Each
 * character is looked at a bounded number of times: the scheme run before one `://` and the
 * userinfo after it do not reach into those of the next.
 */
function maskUserinfo(text: string): string {
  // Copies: a global pattern keeps where it stopped, and every call starts afresh.
  const separator = new RegExp(SEPARATOR);
  const hostEnd = new RegExp(HOST_END);
  let masked = '';
  let copied = 0;
  for (let found = separator.exec(text); found; found = separator.exec(text)) {
    const colon = found.index;
    let start = colon;
    while (start > copied && isSchemeChar(text.charCodeAt(start - 1))) start--;
    // The scheme starts at the run's first letter: digits and signs before it are not part of it.
    while (start < colon && !isLetter(text.charCodeAt(start))) start++;
    if (start === colon) continue;
    const userinfo = colon + 3;
    hostEnd.lastIndex = userinfo;
    const end = hostEnd.exec(text)?.index ?? text.length;
    // Searched within the userinfo only: from its end back to the text's start would be quadratic.
    const at = text.slice(userinfo, end).lastIndexOf('@');
    if (at < 0) continue;
    masked += `${text.slice(copied, userinfo)}${MASKED_USERINFO}@`;
    copied = userinfo + at + 1;
    separator.lastIndex = copied;
  }
  return copied === 0 ? text : masked + text.slice(copied);
}

/**
 * `text` with the user name and password of every URL in it masked. maskUserinfo finds URLs inside
 * longer text; a text that is a URL is also read as the URL parser reads it (which knows spellings
 * the pattern does not, such as `https:user:pass@host`), so that what fetch would send as
 * credentials is never returned.
 */
export function withoutUrlCredentials(text: string): string {
  const masked = maskUserinfo(text);
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
