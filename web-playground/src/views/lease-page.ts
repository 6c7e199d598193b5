import {
  WebLeaseDocument,
  WebLeaseEventsDocument,
  WebReleaseLeaseDocument,
  type WebLeaseEventsSubscription,
  type WebLeaseFragment,
} from '../../../src/generated/graphql/graphql.js';
import { execute, subscribe } from '../api.js';
import { age, h, replaceChildren, statusPill } from '../dom.js';
import { rememberLease } from '../store.js';

type Log = WebLeaseEventsSubscription['leaseEvents']['log'];

const ENDED = new Set(['RELEASED', 'BROKEN', 'DESTROYED']);

function globalLeaseId(databaseId: number): string {
  return btoa(`Lease:${databaseId}`);
}

function timelineEntry(log: Log): HTMLLIElement {
  const data = log.data && typeof log.data === 'object' && Object.keys(log.data).length > 0 ? log.data : null;
  return h(
    'li',
    { class: `event event-${log.type}`, 'data-type': log.type },
    h('time', { datetime: log.createdAt, title: log.createdAt }, new Date(log.createdAt).toLocaleTimeString()),
    h('span', { class: 'event-type' }, log.type),
    data ? h('code', { class: 'event-data' }, JSON.stringify(data)) : null,
  );
}

function details(lease: WebLeaseFragment): HTMLElement {
  const resource = lease.resource;
  const attributes =
    resource && typeof resource.attributes === 'object' && resource.attributes
      ? Object.entries(resource.attributes as Record<string, unknown>)
      : [];
  return h(
    'dl',
    { class: 'details' },
    h('dt', {}, 'Type'),
    h('dd', {}, lease.resourceType),
    h('dt', {}, 'Wanted'),
    h('dd', { class: 'mono' }, JSON.stringify(lease.attributes)),
    h('dt', {}, 'Resource'),
    h('dd', {}, resource ? `#${resource.databaseId} ${resource.name}` : '–'),
    ...attributes.flatMap(([key, value]) => [
      h('dt', { class: 'sub' }, key),
      h('dd', { class: 'mono', 'data-attribute': key }, typeof value === 'string' ? value : JSON.stringify(value)),
    ]),
    h('dt', {}, 'Requested'),
    h('dd', {}, age(lease.createdAt)),
    h('dt', {}, 'Until'),
    h('dd', {}, lease.until ? new Date(lease.until).toLocaleString() : 'released by hand'),
  );
}

function blocker(lease: WebLeaseFragment): HTMLElement | null {
  if (lease.status !== 'PENDING' || !lease.blocker) return null;
  const b = lease.blocker;
  return h(
    'aside',
    { class: 'blocker', 'aria-label': 'Why am I waiting?' },
    h('h3', {}, 'Why am I waiting?'),
    h('p', {}, b.message),
    h(
      'p',
      { class: 'muted' },
      `reason: ${b.reason}`,
      (b.queuePosition ?? 0) > 1 ? ` · #${b.queuePosition} in line for ${lease.resourceType}` : '',
      b.resource ? ` · waiting for resource #${b.resource.databaseId} ${b.resource.name} (${b.resource.status})` : '',
    ),
  );
}

/**
 * One lease: its status, connection details and "why am I waiting", and its timeline, which
 * replays from the start and then fills in live until the lease is DESTROYED.
 */
export function leasePage(databaseId: number): { element: HTMLElement; dispose(): void } {
  const id = globalLeaseId(databaseId);
  const status = h('span', { class: 'status' });
  const summary = h('div', { class: 'summary' });
  const timeline = h('ol', { class: 'timeline', 'aria-label': 'Timeline' });
  const notice = h('p', { class: 'form-error', role: 'alert' });
  const release = h('button', { class: 'danger', type: 'button' }, 'Release');
  let lease: WebLeaseFragment | null = null;
  let live = true;

  const render = () => {
    if (!lease) return;
    replaceChildren(status, statusPill(lease.status));
    replaceChildren(summary, blocker(lease), details(lease));
    release.disabled = ENDED.has(lease.status);
    release.textContent = lease.status === 'RELEASED' ? 'Releasing…' : ENDED.has(lease.status) ? 'Released' : 'Release';
  };
  const show = (next: WebLeaseFragment) => {
    lease = next;
    rememberLease(next);
    render();
  };

  release.addEventListener('click', () => {
    release.disabled = true;
    notice.textContent = '';
    execute(WebReleaseLeaseDocument, { id })
      .then(({ releaseLease: result }) => {
        if (result.__typename === 'ReleaseLeasePayload') show(result.lease);
        else notice.textContent = result.message;
      })
      .catch((error: unknown) => (notice.textContent = error instanceof Error ? error.message : String(error)))
      .finally(render);
  });

  // The lease is re-read over HTTP after each event rather than taken from the event: the
  // server's event payload can carry the lease as it was when the subscription started.
  let reading: Promise<void> | null = null;
  let again = false;
  const reread = (): void => {
    if (reading) {
      again = true;
      return;
    }
    reading = execute(WebLeaseDocument, { id })
      .then((data) => {
        if (data.lease) show(data.lease);
        else notice.textContent = `Lease ${databaseId} does not exist, or is not yours.`;
      })
      .catch((error: unknown) => {
        notice.textContent = error instanceof Error ? error.message : String(error);
      })
      .finally(() => {
        reading = null;
        if (again) {
          again = false;
          reread();
        }
      });
  };
  reread();

  // Cursors already shown are skipped: after a reconnect the stream replays from the start.
  let last = -1n;
  const stop = subscribe(
    WebLeaseEventsDocument,
    { leaseId: id, after: '0' },
    {
      next: ({ leaseEvents: event }) => {
        const cursor = BigInt(event.cursor);
        if (cursor <= last) return;
        last = cursor;
        timeline.append(timelineEntry(event.log));
        reread();
      },
      error: (message) => (notice.textContent = message),
      complete: () => {
        live = false;
        timeline.classList.add('complete');
        reread();
      },
    },
  );

  const element = h(
    'div',
    { class: 'lease-page' },
    h('a', { href: '#/', class: 'back' }, '← All leases'),
    h(
      'header',
      { class: 'lease-header' },
      h('h1', {}, `Lease #${databaseId}`),
      status,
      h('span', { class: 'grow' }),
      release,
    ),
    notice,
    h(
      'div',
      { class: 'lease-body' },
      h('section', { class: 'card' }, h('h2', {}, 'Details'), summary),
      h('section', { class: 'card' }, h('h2', {}, 'Timeline'), timeline),
    ),
  );
  return {
    element,
    dispose: () => {
      if (live) stop();
    },
  };
}
