/** Refusals of load shedding: answered before anything ran, so sending the request again is safe. */
const SHED = new Set(['OVERLOADED', 'TOO_MANY_IN_FLIGHT']);
/** How long a request keeps being sent again while the server sheds load (a busy CI machine). */
const SHED_PATIENCE_MS = 60_000;

/**
 * One GraphQL request over HTTP. A load-shedding refusal (503 or 429 with Retry-After) is sent
 * again after the time it asks for, as a well-behaved client does, unless `retryRefused` is false
 * (tests of the shedding itself).
 */
export async function graphqlRequest<T = unknown>(
  url: string,
  query: string,
  variables?: Record<string, unknown>,
  headers: Record<string, string> = {},
  options: { retryRefused?: boolean } = {},
): Promise<{
  status: number;
  body: { data?: T; errors?: { message: string; extensions?: Record<string, unknown> }[] };
}> {
  const giveUpAt = Date.now() + SHED_PATIENCE_MS;
  for (;;) {
    const response = await fetch(url, {
      method: 'POST',
      headers: { 'content-type': 'application/json', ...headers },
      body: JSON.stringify({ query, variables }),
    });
    const body = (await response.json()) as {
      data?: T;
      errors?: { message: string; extensions?: Record<string, unknown> }[];
    };
    const code = body.errors?.[0]?.extensions?.['code'];
    const shed = (response.status === 503 || response.status === 429) && typeof code === 'string' && SHED.has(code);
    if (!shed || options.retryRefused === false || Date.now() >= giveUpAt) return { status: response.status, body };
    const seconds = Number(response.headers.get('retry-after') ?? 1);
    await new Promise((resolve) => setTimeout(resolve, (Number.isFinite(seconds) ? seconds : 1) * 1_000));
  }
}
