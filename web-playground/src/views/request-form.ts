import { WebRequestLeaseDocument, type RequestLeaseInput } from '../../../src/generated/graphql/graphql.js';
import { execute } from '../api.js';
import { h } from '../dom.js';
import { rememberLease, state } from '../store.js';

const DURATIONS: [string, number | null][] = [
  ['until released', null],
  ['15 minutes', 900],
  ['1 hour', 3600],
  ['8 hours', 28_800],
  ['1 day', 86_400],
];

/**
 * The "request a lease" form; on success it opens the (first) new lease's page. It is built once
 * and kept across live updates, so nothing the user typed is lost; `update` refreshes the
 * resource types offered.
 */
export function requestForm(): { form: HTMLFormElement; update(): void } {
  const typeInput = h('input', {
    name: 'resourceType',
    list: 'resource-types',
    required: true,
    placeholder: 'host',
    autocomplete: 'off',
  });
  const typeList = h('datalist', { id: 'resource-types' });
  const attributes = h('textarea', { name: 'attributes', rows: 3, placeholder: '{"platform": "linux"}' });
  const until = h(
    'select',
    { name: 'until' },
    ...DURATIONS.map(([label, s]) => h('option', { value: s ?? '' }, label)),
  );
  const count = h('input', { name: 'count', type: 'number', min: 1, max: 100, value: 1 });
  const message = h('p', { class: 'form-error', role: 'alert' });
  const submit = h('button', { type: 'submit', class: 'primary' }, 'Request lease');

  const form = h(
    'form',
    { class: 'card request-form', 'aria-label': 'Request a lease' },
    h('h2', {}, 'Request a lease'),
    h('label', {}, 'Resource type', typeInput),
    typeList,
    h('label', {}, 'Wanted attributes ', h('span', { class: 'hint' }, '(JSON, optional)'), attributes),
    h('div', { class: 'row' }, h('label', {}, 'Keep it', until), h('label', {}, 'How many', count)),
    message,
    submit,
  );
  form.addEventListener('submit', (event) => {
    event.preventDefault();
    message.textContent = '';
    let wanted: unknown;
    try {
      wanted = attributes.value.trim() ? JSON.parse(attributes.value) : undefined;
    } catch {
      message.textContent = 'Attributes must be valid JSON, e.g. {"platform": "linux"}.';
      return;
    }
    const input: RequestLeaseInput = {
      resourceType: typeInput.value.trim(),
      count: Number(count.value) || 1,
      ...(wanted === undefined ? {} : { attributes: wanted }),
      ...(until.value ? { ttlSeconds: Number(until.value) } : {}),
    };
    submit.disabled = true;
    execute(WebRequestLeaseDocument, { input })
      .then(({ requestLease: result }) => {
        if (result.__typename !== 'RequestLeasePayload') {
          const path = 'path' in result && result.path?.length ? `${result.path.join('.')}: ` : '';
          message.textContent = `${path}${result.message}`;
          return;
        }
        result.leases.forEach(rememberLease);
        window.location.hash = `#/leases/${result.leases[0]!.databaseId}`;
      })
      .catch((error: unknown) => (message.textContent = error instanceof Error ? error.message : String(error)))
      .finally(() => (submit.disabled = false));
  });
  const update = () => {
    const types = [...new Set(state.blueprints.filter((b) => !b.disabled).map((b) => b.resourceType))];
    typeList.replaceChildren(...types.map((t) => h('option', { value: t })));
    if (!typeInput.value && types[0] && document.activeElement !== typeInput) typeInput.value = types[0];
  };
  update();
  return { form, update };
}
