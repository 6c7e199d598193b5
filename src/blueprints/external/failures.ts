import { PermanentFailure, TemporaryFailure } from '../../failures.js';
import { providerError } from './protocol.js';
import { withoutUrlCredentials } from './redaction.js';

// Which provisioner answers are worth retrying. The rule of docs/external-provisioner.md: a
// provisioner that is busy, over quota or down will recover by itself, so those retry with
// backoff; any other refusal (a bad request, a bad token, an unknown image) would only be refused
// again, so it breaks what asked.

/** Error codes that mean "not now" whatever the HTTP status they come with. */
const temporaryCodes = new Set(['over-quota', 'rate-limited', 'busy', 'unavailable']);

export const isTemporaryStatus = (status: number) =>
  status === 408 || status === 425 || status === 429 || status >= 500;

/** The failure a non-2xx answer means, with the provisioner's own words in the message. */
export function failureOf(
  call: string,
  status: number,
  body: string,
  retryAfterHeader: string | null,
  maxRetryAfterMs: number,
): TemporaryFailure | PermanentFailure {
  const parsed = parseError(body);
  const code = parsed?.code;
  const detail = parsed
    ? `${parsed.code}${parsed.message ? `: ${parsed.message}` : ''}`
    : body.trim().slice(0, 200) || 'no details';
  const message = `provisioner ${call} answered ${status} ${detail}`;
  if (isTemporaryStatus(status) || (code !== undefined && temporaryCodes.has(code))) {
    const hint = parsed?.retryAfterMs ?? retryAfterMsOf(retryAfterHeader);
    return new TemporaryFailure(message, hint === undefined ? undefined : Math.min(hint, maxRetryAfterMs));
  }
  return new PermanentFailure(message);
}

/** A call that got no answer at all: always worth retrying (the provisioner may be restarting). */
export function unansweredFailure(
  call: string,
  why: 'timeout' | 'stopping' | 'network',
  error: unknown,
  timeoutMs: number,
): TemporaryFailure {
  if (why === 'timeout') return new TemporaryFailure(`provisioner ${call} did not answer within ${timeoutMs} ms`);
  if (why === 'stopping') return new TemporaryFailure(`provisioner ${call} was abandoned: the server is stopping`);
  return new TemporaryFailure(`provisioner ${call} failed: ${describeNetworkError(error)}`);
}

/**
 * A request fetch refused to build (a URL with a user name or password, a header value it cannot
 * send): every later try would be refused the same way, whichever box it is for, so it is neither
 * temporary nor limited to one box. fetch quotes the URL it refused: its credentials are hidden.
 */
export function unsendableFailure(call: string, error: unknown, redact: (text: string) => string): PermanentFailure {
  const why = redact(withoutUrlCredentials(error instanceof Error ? error.message : String(error)));
  return new PermanentFailure(`provisioner ${call} cannot be sent: ${why}`, { hopeless: true });
}

function parseError(body: string) {
  try {
    const parsed = providerError.safeParse(JSON.parse(body));
    return parsed.success ? parsed.data.error : undefined;
  } catch {
    return undefined;
  }
}

/** Retry-After in seconds or as an HTTP date (RFC 9110 §10.2.3). */
function retryAfterMsOf(header: string | null): number | undefined {
  if (header === null) return undefined;
  if (/^\d+$/.test(header.trim())) return Number(header.trim()) * 1000;
  const at = Date.parse(header);
  return Number.isNaN(at) ? undefined : Math.max(0, at - Date.now());
}

// fetch reports every network failure as "fetch failed" and keeps the useful part in `cause`.
function describeNetworkError(error: unknown): string {
  if (!(error instanceof Error)) return String(error);
  const cause = (error as { cause?: unknown }).cause;
  return cause instanceof Error ? `${error.message} (${cause.message})` : error.message;
}
