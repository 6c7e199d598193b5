/** Runs a GraphQL subscription over server-sent events and collects each `next` payload until it ends. */
export async function sseSubscription<T>(
  url: string,
  query: string,
  variables: Record<string, unknown>,
  until: (items: T[]) => boolean = () => false,
  headers: Record<string, string> = {},
): Promise<T[]> {
  const controller = new AbortController();
  const response = await fetch(url, {
    method: 'POST',
    headers: { 'content-type': 'application/json', accept: 'text/event-stream', ...headers },
    body: JSON.stringify({ query, variables }),
    signal: controller.signal,
  });
  if (!response.body) throw new Error(`no body (status ${response.status})`);
  const items: T[] = [];
  const decoder = new TextDecoder();
  let buffer = '';
  try {
    for await (const chunk of response.body as unknown as AsyncIterable<Uint8Array>) {
      buffer += decoder.decode(chunk, { stream: true });
      let end: number;
      while ((end = buffer.indexOf('\n\n')) >= 0) {
        const message = buffer.slice(0, end);
        buffer = buffer.slice(end + 2);
        const event = /^event: (\w+)/m.exec(message)?.[1];
        const data = /^data: (.*)$/m.exec(message)?.[1];
        if (event === 'complete') return items;
        if (event === 'next' && data) {
          const parsed = JSON.parse(data) as { data?: T; errors?: unknown };
          if (parsed.errors) throw new Error(JSON.stringify(parsed.errors));
          items.push(parsed.data as T);
          if (until(items)) return items;
        }
      }
    }
    return items;
  } finally {
    controller.abort();
  }
}
