// Operations generated from the schema, for the access walk: a selection of every field reachable
// from a root field (each relation edge at most once on a path, so that the selection is finite),
// and argument values chosen by name from a pool of ids. A field added to the schema later is in
// the next walk without anyone editing it.
import {
  getNamedType,
  isAbstractType,
  isEnumType,
  isInputObjectType,
  isLeafType,
  isListType,
  isNonNullType,
  type GraphQLArgument,
  type GraphQLField,
  type GraphQLInputType,
  type GraphQLNamedType,
  type GraphQLObjectType,
  type GraphQLSchema,
} from 'graphql';

/** Ids to try for an argument or input field, by its name (leaseId, resourceId, ids, ...). */
export type IdPool = (name: string, fieldName: string) => string[];

export interface Operation {
  label: string;
  query: string;
  variables: Record<string, unknown>;
}

const requiredArgs = (field: GraphQLField<unknown, unknown>) => field.args.filter((arg) => isNonNullType(arg.type));

// Inside the fragments of an abstract type, same-named fields of different types conflict (Lease.status
// and Resource.status): those, and only those, get the type's name as an alias.
function conflicting(types: readonly GraphQLObjectType[]): Set<string> {
  const seen = new Map<string, Set<string>>();
  for (const type of types) {
    for (const field of Object.values(type.getFields())) {
      const kinds = seen.get(field.name) ?? new Set<string>();
      kinds.add(field.type.toString());
      seen.set(field.name, kinds);
    }
  }
  return new Set([...seen].filter(([, kinds]) => kinds.size > 1).map(([name]) => name));
}

function selectionOf(
  schema: GraphQLSchema,
  type: GraphQLNamedType,
  path: string[],
  aliased: Set<string> = new Set(),
): string {
  if (isLeafType(type)) return '';
  if (isAbstractType(type)) {
    const possibleTypes = schema.getPossibleTypes(type);
    const clashes = conflicting(possibleTypes);
    const fragments = possibleTypes.map(
      (possible) => `... on ${possible.name} { ${selectionOf(schema, possible, path, clashes)} }`,
    );
    return `__typename ${fragments.join(' ')}`;
  }
  const object = type as GraphQLObjectType;
  const parts = ['__typename'];
  for (const field of Object.values(object.getFields())) {
    // Nested fields with required arguments take values only a caller knows; none exist today.
    if (requiredArgs(field).length > 0) continue;
    const named = getNamedType(field.type);
    const name = aliased.has(field.name) ? `${object.name}_${field.name}: ${field.name}` : field.name;
    if (isLeafType(named)) {
      parts.push(name);
      continue;
    }
    const edge = `${object.name}.${field.name}`;
    if (path.includes(edge)) continue;
    parts.push(`${name} { ${selectionOf(schema, named, [...path, edge])} }`);
  }
  return parts.join(' ');
}

function scalarValue(type: GraphQLNamedType, name: string): unknown {
  switch (type.name) {
    case 'String':
      return name === 'after' ? '0' : name === 'argv' ? 'true' : 'host';
    case 'Int':
    case 'Float':
      return 1;
    case 'Boolean':
      return false;
    case 'JSON':
      return {};
    case 'DateTime':
      return new Date(Date.now() + 3_600_000).toISOString();
    default:
      return isEnumType(type) ? type.getValues()[0]!.value : null;
  }
}

/** Every value to try for an input: one per id in the pool where ids go, a plain value elsewhere. */
function valuesOf(type: GraphQLInputType, name: string, fieldName: string, pool: IdPool, required: boolean): unknown[] {
  const inner = isNonNullType(type) ? type.ofType : type;
  if (isListType(inner)) {
    const item = getNamedType(inner);
    if (item.name === 'ID') return [pool(name, fieldName)];
    return valuesOf(inner.ofType, name, fieldName, pool, true).map((value) => [value]);
  }
  if (inner.name === 'ID') return pool(name, fieldName);
  if (isInputObjectType(inner)) {
    const base: Record<string, unknown> = {};
    const fields = Object.values(inner.getFields());
    for (const field of fields.filter((f) => isNonNullType(f.type))) {
      base[field.name] = valuesOf(field.type, field.name, fieldName, pool, true)[0];
    }
    const variants = required ? [base] : [];
    // One variant per id-valued optional field: filters by another principal's objects.
    for (const field of fields.filter((f) => !isNonNullType(f.type) && getNamedType(f.type).name === 'ID')) {
      for (const value of valuesOf(field.type, field.name, fieldName, pool, false)) {
        variants.push({ ...base, [field.name]: value });
      }
    }
    return variants;
  }
  return [scalarValue(inner, name)];
}

function argumentVariants(
  field: GraphQLField<unknown, unknown>,
  pool: IdPool,
  root: 'query' | 'subscription',
): Record<string, unknown>[] {
  // Event streams replay their whole history from cursor "0": the most a subscriber can ask for.
  const base: Record<string, unknown> =
    root === 'subscription' && field.args.some((arg) => arg.name === 'after') ? { after: '0' } : {};
  let required: Record<string, unknown>[] = [base];
  const fill = (arg: GraphQLArgument) => valuesOf(arg.type, arg.name, field.name, pool, true);
  for (const arg of requiredArgs(field)) {
    required = required.flatMap((variant) => fill(arg).map((value) => ({ ...variant, [arg.name]: value })));
  }
  const variants = [...required];
  // Each optional id-valued argument (or filter field) on its own, with every id of the pool.
  for (const arg of field.args.filter((a) => !isNonNullType(a.type))) {
    const named = getNamedType(arg.type);
    if (named.name !== 'ID' && !isInputObjectType(named)) continue;
    for (const value of valuesOf(arg.type, arg.name, field.name, pool, false)) {
      variants.push({ ...required[0], [arg.name]: value });
    }
  }
  return variants;
}

function typeString(arg: GraphQLArgument): string {
  return arg.type.toString();
}

/** One operation per root field and argument variant of `root` (Query or Subscription). */
export function walkOperations(schema: GraphQLSchema, root: 'query' | 'subscription', pool: IdPool): Operation[] {
  const rootType = root === 'query' ? schema.getQueryType() : schema.getSubscriptionType();
  if (!rootType) return [];
  const operations: Operation[] = [];
  for (const field of Object.values(rootType.getFields())) {
    const selection = selectionOf(schema, getNamedType(field.type), [`${rootType.name}.${field.name}`]);
    for (const variables of argumentVariants(field, pool, root)) {
      const used = field.args.filter((arg) => arg.name in variables);
      const declared = used.map((arg) => `$${arg.name}: ${typeString(arg)}`).join(', ');
      const passed = used.map((arg) => `${arg.name}: $${arg.name}`).join(', ');
      operations.push({
        label: `${root} ${field.name}(${JSON.stringify(variables)})`,
        query: `${root}${declared ? ` (${declared})` : ''} { ${field.name}${passed ? `(${passed})` : ''}${
          selection ? ` { ${selection} }` : ''
        } }`,
        variables,
      });
    }
  }
  return operations;
}
