import {
  WebBlueprintsDocument,
  WebLeasesChangedDocument,
  WebLeasesDocument,
  WebResourcesChangedDocument,
  WebResourcesDocument,
  WebViewerDocument,
  type WebBlueprintFragment,
  type WebLeaseRowFragment,
  type WebResourceFragment,
} from '../../src/generated/graphql/graphql.js';
import { execute, subscribe } from './api.js';

/**
 * What the dashboard shows, kept current by subscriptions: leases and resources arrive through
 * leasesChanged / resourcesChanged; blueprints have no subscription, so they are re-read when a
 * resource changes (which is when their counts move).
 */
export interface State {
  viewer: { name: string; isAdmin: boolean } | null;
  blueprints: WebBlueprintFragment[];
  resources: Map<string, WebResourceFragment>;
  leases: Map<string, WebLeaseRowFragment>;
  error: string | null;
}

export const state: State = { viewer: null, blueprints: [], resources: new Map(), leases: new Map(), error: null };

const listeners = new Set<() => void>();
export function onChange(listener: () => void): () => void {
  listeners.add(listener);
  return () => listeners.delete(listener);
}
function changed(): void {
  for (const listener of listeners) listener();
}

export function rememberLease(lease: WebLeaseRowFragment): void {
  state.leases.set(lease.id, lease);
  changed();
}

let refreshingBlueprints: Promise<void> | null = null;
function refreshBlueprints(): void {
  refreshingBlueprints ??= execute(WebBlueprintsDocument)
    .then((data) => {
      state.blueprints = data.blueprints.edges.map((e) => e.node);
      changed();
    })
    .catch(() => undefined)
    .finally(() => (refreshingBlueprints = null));
}

export async function load(): Promise<void> {
  // Subscribe before reading, so that nothing changing in between is missed.
  subscribe(WebLeasesChangedDocument, {}, { next: (data) => rememberLease(data.leasesChanged) });
  subscribe(
    WebResourcesChangedDocument,
    {},
    {
      next: (data) => {
        state.resources.set(data.resourcesChanged.id, data.resourcesChanged);
        refreshBlueprints();
        changed();
      },
    },
  );
  try {
    const [viewer, blueprints, resources, leases] = await Promise.all([
      execute(WebViewerDocument),
      execute(WebBlueprintsDocument),
      execute(WebResourcesDocument, { status: ['PENDING', 'ACTIVE', 'RELEASED', 'BROKEN'] }),
      execute(WebLeasesDocument, { status: ['PENDING', 'ACQUIRED', 'ACTIVE', 'RELEASED', 'BROKEN'] }),
    ]);
    state.viewer = viewer.viewer;
    state.blueprints = blueprints.blueprints.edges.map((e) => e.node);
    // What a subscription already delivered is newer than the listing: keep it.
    for (const { node } of resources.resources.edges)
      if (!state.resources.has(node.id)) state.resources.set(node.id, node);
    for (const { node } of leases.leases.edges) if (!state.leases.has(node.id)) state.leases.set(node.id, node);
    state.error = null;
  } catch (error) {
    state.error = error instanceof Error ? error.message : String(error);
  }
  changed();
}
