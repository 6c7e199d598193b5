// A Prisma where as an SQL condition, for the few shapes the access policy's rules use: equality
// and `in` on a row's own columns, AND, OR, and a relation's `some` (to-many) or `is` (to-one,
// also written without `is`). It exists so that a statement Prisma cannot write (a page per parent
// in one statement, src/schema/nested-pages.ts) filters by the policy's rule itself rather than by
// a second copy of it. Like row-match.ts, a rule that grows beyond this throws instead of being
// answered wrongly; test/access-where-sql.test.ts checks every rule against Prisma's own reading.
import { Prisma } from '../generated/prisma/client.js';
import { getDatamodel } from '../generated/pothos-prisma-types.js';

interface Field {
  name: string;
  kind: string;
  type: string;
  isList: boolean;
  isId: boolean;
  relationName?: string;
  relationFromFields?: readonly string[];
}

const models = getDatamodel().datamodel.models as Record<string, { fields: readonly Field[] }>;

// Scalar columns are compared as the type of the column, so that an index on it can be used.
const CASTS: Record<string, string> = { Int: 'int', BigInt: 'bigint', String: 'text', Boolean: 'boolean' };

function cannot(model: string, where: unknown): never {
  throw new Error(`where-sql cannot write ${JSON.stringify(where)} on ${model} as SQL`);
}

const ident = (name: string) => Prisma.raw(`"${name.replaceAll('"', '""')}"`);

function fieldOf(model: string, name: string, where: unknown): Field {
  return models[model]?.fields.find((field) => field.name === name) ?? cannot(model, where);
}

function idOf(model: string): Field {
  const ids = models[model]?.fields.filter((field) => field.isId) ?? [];
  return ids.length === 1 ? ids[0]! : cannot(model, 'a single-column id');
}

/** `column = value` for one scalar or enum column; enums compare as text. */
function equals(model: string, column: Prisma.Sql, field: Field, value: unknown, where: unknown): Prisma.Sql {
  if (value === null) return Prisma.sql`${column} IS NULL`;
  if (field.kind === 'enum' && typeof value === 'string') return Prisma.sql`${column}::text = ${value}`;
  const cast = CASTS[field.type];
  if (field.kind !== 'scalar' || !cast || !['number', 'string', 'boolean', 'bigint'].includes(typeof value))
    cannot(model, where);
  return Prisma.sql`${column} = ${String(value)}::${Prisma.raw(cast)}`;
}

function scalarCondition(model: string, alias: string, field: Field, condition: unknown): Prisma.Sql {
  const column = Prisma.sql`${Prisma.raw(alias)}.${ident(field.name)}`;
  if (condition === null || typeof condition !== 'object') return equals(model, column, field, condition, condition);
  const entries = Object.entries(condition);
  if (entries.length === 1 && entries[0]![0] === 'in' && Array.isArray(entries[0]![1])) {
    const options = entries[0]![1] as unknown[];
    if (options.length === 0) return Prisma.sql`false`;
    return Prisma.join(
      options.map((option) => equals(model, column, field, option, condition)),
      ' OR ',
      '(',
      ')',
    );
  }
  return cannot(model, condition);
}

/** EXISTS of the related rows matching `inner`, joined by the relation's foreign key. */
function relationCondition(model: string, alias: string, field: Field, inner: unknown, depth: number): Prisma.Sql {
  const target = field.type;
  const other = `t${depth + 1}`;
  const opposite = models[target]?.fields.find(
    (candidate) => candidate.relationName === field.relationName && candidate !== field && candidate.kind === 'object',
  );
  // The side holding the foreign key names it; the other side is referenced by its id.
  const own = field.relationFromFields ?? [];
  const theirs = opposite?.relationFromFields ?? [];
  const join =
    own.length === 1
      ? Prisma.sql`${Prisma.raw(other)}.${ident(idOf(target).name)} = ${Prisma.raw(alias)}.${ident(own[0]!)}`
      : theirs.length === 1
        ? Prisma.sql`${Prisma.raw(other)}.${ident(theirs[0]!)} = ${Prisma.raw(alias)}.${ident(idOf(model).name)}`
        : cannot(model, { [field.name]: inner });
  const where = inner === null || typeof inner !== 'object' ? cannot(model, { [field.name]: inner }) : inner;
  return Prisma.sql`EXISTS (SELECT 1 FROM ${ident(target)} AS ${Prisma.raw(other)} WHERE ${join} AND ${condition(target, other, where, depth + 1)})`;
}

function condition(model: string, alias: string, where: object, depth: number): Prisma.Sql {
  const parts = Object.entries(where).map(([key, value]: [string, unknown]) => {
    if (key === 'AND' || key === 'OR') {
      const list: unknown[] = Array.isArray(value) ? value : [value];
      if (list.length === 0) return key === 'AND' ? Prisma.sql`true` : Prisma.sql`false`;
      return Prisma.join(
        list.map((part) =>
          typeof part === 'object' && part !== null ? condition(model, alias, part, depth) : cannot(model, part),
        ),
        key === 'AND' ? ' AND ' : ' OR ',
        '(',
        ')',
      );
    }
    const field = fieldOf(model, key, where);
    if (field.kind !== 'object') return scalarCondition(model, alias, field, value);
    const entries = value !== null && typeof value === 'object' ? Object.entries(value) : [];
    if (field.isList) {
      return entries.length === 1 && entries[0]![0] === 'some'
        ? relationCondition(model, alias, field, entries[0]![1], depth)
        : cannot(model, { [key]: value });
    }
    return entries.length === 1 && entries[0]![0] === 'is'
      ? relationCondition(model, alias, field, entries[0]![1], depth)
      : relationCondition(model, alias, field, value, depth);
  });
  return parts.length === 0 ? Prisma.sql`true` : Prisma.join(parts, ' AND ', '(', ')');
}

/**
 * `where` on rows of `model` as an SQL condition on the table aliased `alias` (aliases t1, t2, ...
 * are taken by its subqueries, so the caller's alias must not be one of those).
 */
export function whereSql(model: string, alias: string, where: object): Prisma.Sql {
  if (/^t\d+$/.test(alias)) throw new Error(`where-sql: the alias ${alias} is taken by its subqueries`);
  return condition(model, alias, where, 0);
}
