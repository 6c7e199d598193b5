import type { WebLeaseRowFragment } from '../../../src/generated/graphql/graphql.js';
import { age, h, replaceChildren, statusPill } from '../dom.js';
import { state } from '../store.js';
import { Queues } from '../queue.js';
import { requestForm } from './request-form.js';

function empty(columns: number, text: string): HTMLTableRowElement {
  return h('tr', {}, h('td', { colspan: columns, class: 'empty' }, text));
}

export function waitingText(lease: WebLeaseRowFragment): string {
  if (lease.status !== 'PENDING' || !lease.blocker) return '';
  const queue = (lease.blocker.queuePosition ?? 0) > 1 ? ` · #${lease.blocker.queuePosition} in line` : '';
  return `${lease.blocker.message}${queue}`;
}

function leasesCard(): HTMLElement {
  const leases = [...state.leases.values()].sort((a, b) => b.databaseId - a.databaseId);
  return h(
    'section',
    { class: 'card', 'aria-label': 'Leases' },
    h('h2', {}, 'Leases ', h('span', { class: 'count' }, leases.filter((l) => l.status !== 'DESTROYED').length)),
    h(
      'table',
      { class: 'leases' },
      h(
        'thead',
        {},
        h(
          'tr',
          {},
          h('th', {}, 'Lease'),
          h('th', {}, 'Status'),
          h('th', {}, 'Type'),
          h('th', {}, 'Resource'),
          h('th', {}, 'Why waiting'),
          h('th', {}, 'Requested'),
        ),
      ),
      h(
        'tbody',
        {},
        leases.length === 0
          ? empty(6, 'No leases yet: request one.')
          : leases.map((lease) =>
              h(
                'tr',
                { class: lease.status === 'DESTROYED' ? 'gone' : '', 'data-lease': lease.databaseId },
                h('td', {}, h('a', { href: `#/leases/${lease.databaseId}` }, `#${lease.databaseId}`)),
                h('td', {}, statusPill(lease.status)),
                h('td', {}, lease.resourceType),
                h('td', {}, lease.resource ? lease.resource.name : '–'),
                h('td', { class: 'waiting' }, waitingText(lease)),
                h('td', { class: 'muted' }, age(lease.createdAt)),
              ),
            ),
      ),
    ),
  );
}

function resourcesCard(): HTMLElement {
  const resources = [...state.resources.values()].sort((a, b) => b.databaseId - a.databaseId);
  return h(
    'section',
    { class: 'card', 'aria-label': 'Resources' },
    h('h2', {}, 'Resources ', h('span', { class: 'count' }, resources.filter((r) => r.status !== 'DESTROYED').length)),
    h(
      'table',
      {},
      h(
        'thead',
        {},
        h(
          'tr',
          {},
          h('th', {}, 'Resource'),
          h('th', {}, 'Status'),
          h('th', {}, 'Type'),
          h('th', {}, 'Blueprint'),
          h('th', {}, 'Attributes'),
        ),
      ),
      h(
        'tbody',
        {},
        resources.length === 0
          ? empty(5, 'No resources: a blueprint allocates them when a lease needs one.')
          : resources.map((r) =>
              h(
                'tr',
                { class: r.status === 'DESTROYED' ? 'gone' : '' },
                h('td', {}, `#${r.databaseId} `, h('strong', {}, r.name)),
                h('td', {}, statusPill(r.status)),
                h('td', {}, r.type),
                h('td', {}, r.blueprint.name),
                h('td', { class: 'mono muted' }, JSON.stringify(r.attributes)),
              ),
            ),
      ),
    ),
  );
}

function blueprintsCard(): HTMLElement {
  return h(
    'section',
    { class: 'card', 'aria-label': 'Blueprints' },
    h('h2', {}, 'Blueprints ', h('span', { class: 'count' }, state.blueprints.length)),
    state.blueprints.length === 0
      ? h(
          'p',
          { class: 'empty' },
          'No blueprints yet. Create one with ',
          h('code', {}, 'drydock blueprint create'),
          ' or in GraphiQL.',
        )
      : h(
          'ul',
          { class: 'blueprints' },
          state.blueprints.map((b) =>
            h(
              'li',
              { class: b.disabled ? 'gone' : '' },
              h('strong', {}, b.name),
              h('span', { class: 'muted' }, ` #${b.databaseId} · ${b.implementation} → ${b.resourceType}`),
              b.resourceLimit ? h('span', { class: 'muted' }, ` · limit ${b.resourceLimit}`) : null,
              b.disabled ? h('span', { class: 'pill pill-disabled' }, 'disabled') : null,
            ),
          ),
        ),
  );
}

/** The waiting leases of each type in the order the next scheduling pass considers them. */
function queueCard(queues: Queues): HTMLElement | null {
  if (queues.byType.size === 0) return null;
  return h(
    'section',
    { class: 'card', 'aria-label': 'Queue' },
    h('h2', {}, 'Queue'),
    [...queues.byType].map(([type, entries]) =>
      h(
        'div',
        { class: 'queue', 'data-type': type },
        h('h3', {}, type),
        h(
          'ol',
          {},
          entries.map((entry) =>
            h(
              'li',
              { 'data-position': entry.position, ...(entry.lease ? { 'data-lease': entry.lease.databaseId } : {}) },
              entry.lease
                ? h('a', { href: `#/leases/${entry.lease.databaseId}` }, `#${entry.lease.databaseId}`)
                : h('span', { class: 'muted' }, 'another owner’s lease'),
              h('span', { class: 'muted' }, ` · priority ${entry.priority}`),
              entry.band !== entry.priority ? h('span', { class: 'muted' }, ` (aged to ${entry.band})`) : null,
              entry.blockerMessage ? h('span', { class: 'waiting' }, ` · ${entry.blockerMessage}`) : null,
            ),
          ),
        ),
      ),
    ),
  );
}

/** The home page: the request form and blueprints beside the queue and the live leases and resources. */
export function dashboard(): { element: HTMLElement; update(): void } {
  const form = requestForm();
  const blueprints = h('div');
  const main = h('div', { class: 'main' });
  let waiting = '';
  const draw = () => {
    form.update();
    replaceChildren(blueprints, blueprintsCard());
    replaceChildren(main, ...[queueCard(queues), leasesCard(), resourcesCard()].filter((c) => c !== null));
  };
  const queues = new Queues(draw);
  const update = () => {
    // The queue is re-read when which leases wait, or how, has changed.
    const pending = [...state.leases.values()].filter((l) => l.status === 'PENDING');
    const key = pending.map((l) => `${l.id}:${l.blocker?.message ?? ''}`).join(',');
    if (key !== waiting) {
      waiting = key;
      queues.refresh(pending.map((l) => l.resourceType));
    }
    draw();
  };
  update();
  return {
    element: h('div', { class: 'dashboard' }, h('div', { class: 'side' }, form.form, blueprints), main),
    update,
  };
}
