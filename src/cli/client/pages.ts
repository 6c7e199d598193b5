/** One page of a Relay connection, as the generated list queries return it. */
export interface Page<T> {
  edges: { node: T }[];
  pageInfo: { hasNextPage: boolean; endCursor?: string | null };
}

/** Follows `after` cursors until `limit` items or the last page (the server caps pages at 100). */
export async function collectPages<T>(
  fetchPage: (first: number, after: string | undefined) => Promise<Page<T>>,
  limit = Number.POSITIVE_INFINITY,
): Promise<T[]> {
  const items: T[] = [];
  let after: string | undefined;
  for (;;) {
    const page = await fetchPage(Math.min(100, limit - items.length), after);
    items.push(...page.edges.map((edge) => edge.node));
    if (!page.pageInfo.hasNextPage || !page.pageInfo.endCursor || items.length >= limit) return items;
    after = page.pageInfo.endCursor;
  }
}
