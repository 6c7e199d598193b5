import type {
  CliAuthorizationFragment,
  CliBlueprintFragment,
  CliLeaseFragment,
  CliResourceFragment,
  CliTokenFragment,
} from '../../generated/graphql/graphql.js';
import { table } from './table.js';

/** How long ago, compactly: "42s", "5m", "3h", "2d". */
export function age(iso: string | null | undefined, now = Date.now()): string {
  if (!iso) return '-';
  const seconds = Math.max(0, Math.round((now - Date.parse(iso)) / 1000));
  if (seconds < 60) return `${seconds}s`;
  if (seconds < 3600) return `${Math.floor(seconds / 60)}m`;
  if (seconds < 86_400) return `${Math.floor(seconds / 3600)}h`;
  return `${Math.floor(seconds / 86_400)}d`;
}

export function compactJson(value: unknown, max = 80): string {
  if (value === null || value === undefined) return '';
  if (typeof value === 'object' && Object.keys(value).length === 0) return '';
  const text = typeof value === 'string' ? value : JSON.stringify(value);
  return text.length > max ? `${text.slice(0, max - 1)}…` : text;
}

/** A log entry's data as `key=value` pairs, which read better in a terminal than raw JSON. */
export function logData(data: unknown): string {
  if (typeof data !== 'object' || data === null || Array.isArray(data)) return compactJson(data);
  return Object.entries(data)
    .map(([key, value]) => [key, typeof value === 'string' ? value : compactJson(value, 60)] as const)
    .filter(([, text]) => text !== '')
    .map(([key, text]) => `${key}=${text}`)
    .join(' ');
}

export function resourceLabel(resource: CliResourceFragment | null | undefined): string {
  return resource ? `${resource.databaseId} (${resource.name})` : '-';
}

export function leaseTable(leases: CliLeaseFragment[]): string {
  return table(
    ['ID', 'STATUS', 'TYPE', 'RESOURCE', 'UNTIL', 'AGE', 'WAITING FOR'],
    leases.map((lease) => [
      String(lease.databaseId),
      lease.status,
      lease.resourceType,
      resourceLabel(lease.resource),
      lease.until ?? '-',
      age(lease.createdAt),
      lease.status === 'PENDING' && lease.blocker ? lease.blocker.message : '',
    ]),
  );
}

export function resourceTable(resources: CliResourceFragment[]): string {
  return table(
    ['ID', 'STATUS', 'TYPE', 'NAME', 'BLUEPRINT', 'AGE', 'ATTRIBUTES'],
    resources.map((resource) => [
      String(resource.databaseId),
      resource.status,
      resource.type,
      resource.name,
      `${resource.blueprint.databaseId} (${resource.blueprint.name})`,
      age(resource.createdAt),
      compactJson(resource.attributes, 60),
    ]),
  );
}

export function blueprintTable(blueprints: CliBlueprintFragment[]): string {
  return table(
    ['ID', 'NAME', 'IMPLEMENTATION', 'TYPE', 'STATE', 'LIMIT'],
    blueprints.map((blueprint) => [
      String(blueprint.databaseId),
      blueprint.name,
      blueprint.implementation,
      blueprint.resourceType,
      blueprint.disabled ? 'disabled' : 'enabled',
      blueprint.resourceLimit === null || blueprint.resourceLimit === undefined ? '-' : String(blueprint.resourceLimit),
    ]),
  );
}

export function tokenTable(tokens: CliTokenFragment[]): string {
  return table(
    ['ID', 'NAME', 'PREFIX', 'SCOPES', 'PRINCIPAL', 'CREATED', 'LAST USED', 'STATE'],
    tokens.map((token) => [
      String(token.databaseId),
      token.name,
      token.prefix,
      token.scopes.join(',').toLowerCase(),
      token.principal.name + (token.principal.isAdmin ? ' (admin)' : ''),
      token.createdAt,
      token.lastUsedAt ?? '-',
      token.revokedAt ? 'revoked' : token.expiresAt && Date.parse(token.expiresAt) < Date.now() ? 'expired' : 'active',
    ]),
  );
}

export function authorizationTable(authorizations: CliAuthorizationFragment[]): string {
  return table(
    ['ID', 'STATE', 'BLUEPRINT', 'PRINCIPAL', 'UPDATED'],
    authorizations.map((a) => [
      String(a.databaseId),
      a.state,
      `${a.blueprint.databaseId} (${a.blueprint.name})`,
      a.principal.name,
      a.updatedAt,
    ]),
  );
}

/**
 * What a user needs to reach what they leased: the resource's attributes (a host-pool resource
 * carries address, port, binding and service) under the lease line.
 */
export function activeLeaseReport(lease: CliLeaseFragment): string {
  const resource = lease.resource;
  const lines = [
    `lease ${lease.databaseId} is ${lease.status}` +
      (resource
        ? ` on resource ${resource.databaseId} "${resource.name}" (${resource.type}, blueprint ${resource.blueprint.databaseId} "${resource.blueprint.name}")`
        : ''),
  ];
  const attributes = resource?.attributes;
  if (attributes && typeof attributes === 'object' && !Array.isArray(attributes)) {
    const entries = Object.entries(attributes);
    const width = Math.max(0, ...entries.map(([key]) => key.length));
    for (const [key, value] of entries) {
      lines.push(`  ${key.padEnd(width)}  ${typeof value === 'string' ? value : JSON.stringify(value)}`);
    }
  }
  if (lease.until) lines.push(`  until ${lease.until}`);
  return lines.join('\n');
}
