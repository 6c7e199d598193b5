import './style.css';
import { onConnectionState, savedToken, saveToken, type ConnectionState } from './api.js';
import { h, replaceChildren } from './dom.js';
import { load, onChange, state } from './store.js';
import { dashboard } from './views/dashboard.js';
import { leasePage } from './views/lease-page.js';

const connection = h('span', { class: 'connection', 'data-state': 'connecting' }, 'connecting');
const viewer = h('span', { class: 'viewer' });
const banner = h('p', { class: 'banner', role: 'alert', hidden: true });
const outlet = h('main');

function tokenForm(): HTMLElement {
  const input = h('input', {
    type: 'password',
    placeholder: 'API token (not needed on 127.0.0.1)',
    value: savedToken(),
    'aria-label': 'API token',
  });
  return h(
    'form',
    {
      class: 'token',
      onsubmit: (event: Event) => {
        event.preventDefault();
        saveToken(input.value.trim());
        window.location.reload();
      },
    },
    input,
    h('button', { type: 'submit' }, 'Use token'),
  );
}

onConnectionState((next: ConnectionState) => {
  connection.dataset['state'] = next;
  connection.textContent = next === 'connected' ? 'live' : next;
});

document.body.append(
  h(
    'header',
    { class: 'top' },
    h('a', { href: '#/', class: 'brand' }, h('span', { class: 'logo' }, '⚓'), 'Drydock'),
    connection,
    h('span', { class: 'grow' }),
    viewer,
    tokenForm(),
    h('a', { href: '/graphql', class: 'graphiql', target: '_blank', rel: 'noopener' }, 'GraphiQL ↗'),
  ),
  banner,
  outlet,
);

// Hash routes (#/ and #/leases/42) keep every page a static file the server can serve.
let current: { update?(): void; dispose?(): void } = {};
function route(): void {
  current.dispose?.();
  const match = /^#\/leases\/(\d+)$/.exec(window.location.hash);
  if (match) {
    const page = leasePage(Number(match[1]));
    current = page;
    replaceChildren(outlet, page.element);
  } else {
    const page = dashboard();
    current = page;
    replaceChildren(outlet, page.element);
  }
}

onChange(() => {
  viewer.textContent = state.viewer ? `${state.viewer.name}${state.viewer.isAdmin ? ' · admin' : ''}` : '';
  banner.hidden = !state.error;
  banner.textContent = state.error ?? '';
  current.update?.();
});
window.addEventListener('hashchange', route);
route();
void load();
