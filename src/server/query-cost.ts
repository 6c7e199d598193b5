import {
  getNamedType,
  getNullableType,
  getOperationAST,
  GraphQLError,
  isCompositeType,
  isListType,
  isObjectType,
  isInterfaceType,
  Kind,
  type DocumentNode,
  type ExecutionArgs,
  type FragmentDefinitionNode,
  type GraphQLField,
  type GraphQLNamedType,
  type GraphQLSchema,
  type OperationDefinitionNode,
  type SelectionNode,
  type ValueNode,
} from 'graphql';
import type { Plugin } from 'graphql-yoga';
import { builder } from '../schema/builder.js';

// The query cost limit, weighed where the variables are known. graphql-armor's own estimate runs
// as a validation rule, before any variable is: it multiplied by `first`/`last` only when they
// were integer literals, so the same query with `first: $n` cost as if every page held one item
// (and so did an omitted `first`, which the server answers with a page of its default size).
//
// The estimate: how many values the response can hold. A field is 1, plus what is selected
// below it; a list multiplies that by how many items it can hold: a page's size (the `first` or
// `last` asked for, as a literal, a variable or a variable's default, or the field's default when
// neither is given, capped at its maximum), the number of ids asked for (`nodes`), or for a list
// without paging its known bound, else DEFAULT_LIST_SIZE. Fragments are weighed once each (per
// page size), so spreading one many times costs its weight each time but is walked once; the walk
// is iterative, over a document the token limit keeps small.

export interface PagedField {
  /** The page size when neither `first` nor `last` is given. */
  defaultSize: number;
  /** The largest page: a larger one is weighed at this size, and refused when it runs (keyset.ts). */
  maxSize: number;
  /** The list field of the result that holds the page. */
  list: string;
}

export interface CostOptions {
  maxCost: number;
  /** Any field with a `first` or `last` argument not in `pagedFields`: a Relay connection. */
  connection: PagedField;
  /** Paged fields that are not Pothos connections, by "Type.field". */
  pagedFields: Record<string, PagedField>;
  /** Lists without paging, by "Type.field": how many items each is weighed as. */
  listSizes: Record<string, number>;
  /** Lists as long as one of their list arguments, by "Type.field": the argument's name. */
  listsByArgument: Record<string, string>;
  /** Any other list without paging. */
  defaultListSize: number;
}

export const DEFAULT_LIST_SIZE = 20;

export const costOptions = (maxCost: number): CostOptions => ({
  maxCost,
  // A connection serves first ?? last ?? defaultConnectionSize rows, and refuses a page larger than
  // maxConnectionSize (keyset.ts) with its own error, which the cost should not pre-empt (Pothos'
  // defaults are 20 and 100).
  connection: {
    defaultSize: builder.options.prisma.defaultConnectionSize ?? 20,
    maxSize: builder.options.prisma.maxConnectionSize ?? 100,
    list: 'edges',
  },
  // src/schema/scheduling.ts: `first` defaults to 100 and is refused past 1000.
  pagedFields: { 'Query.queue': { defaultSize: 100, maxSize: 1_000, list: 'entries' } },
  listSizes: {
    // Read with `take: 500` (src/schema/lease.ts).
    'Lease.logs': 500,
    // The holders of one slot: leaf values the resolver already holds, with nothing below them to
    // read. Weighed as one, as graphql-armor weighed every list without paging.
    'ResourceCandidate.holders': 1,
    'ConflictError.holders': 1,
  },
  listsByArgument: { 'Query.nodes': 'ids' },
  defaultListSize: DEFAULT_LIST_SIZE,
});

type Variables = Readonly<Record<string, unknown>> | null | undefined;

interface Frame {
  selections: readonly SelectionNode[];
  index: number;
  /** The type the selections are made on. */
  type: GraphQLNamedType | undefined;
  /** Within a paged field's selection: its page's list field and size. */
  page: { list: string; size: number } | undefined;
  total: number;
  done: (total: number) => void;
}

export interface Cost {
  cost: number;
  /** Whether a variable's value (or default) entered the estimate: if not, it holds for every request. */
  usesVariables: boolean;
}

/** The estimated cost of one operation of a document (valid against `schema`) with these variables. */
export function operationCost(
  schema: GraphQLSchema,
  document: DocumentNode,
  operation: OperationDefinitionNode,
  variables: Variables,
  options: CostOptions,
): Cost {
  let usesVariables = false;
  const fragments = new Map<string, FragmentDefinitionNode>();
  for (const definition of document.definitions) {
    if (definition.kind === Kind.FRAGMENT_DEFINITION) fragments.set(definition.name.value, definition);
  }
  const defaults = new Map<string, ValueNode>();
  for (const definition of operation.variableDefinitions ?? []) {
    if (definition.defaultValue) defaults.set(definition.variable.name.value, definition.defaultValue);
  }

  /** A literal's value; a variable's value, else its default; undefined when neither is given. */
  const valueOf = (node: ValueNode | undefined): unknown => {
    if (!node) return undefined;
    if (node.kind === Kind.VARIABLE) {
      usesVariables = true;
      const name = node.name.value;
      const given = variables?.[name];
      return given !== undefined ? given : valueOf(defaults.get(name));
    }
    switch (node.kind) {
      case Kind.INT:
      case Kind.FLOAT:
        return Number(node.value);
      case Kind.NULL:
        return null;
      case Kind.LIST:
        return node.values;
      default:
        return undefined;
    }
  };
  const argumentValue = (
    node: { arguments?: readonly { name: { value: string }; value: ValueNode }[] },
    name: string,
  ) => valueOf(node.arguments?.find((argument) => argument.name.value === name)?.value);

  /** The page size a paged field serves for these arguments (as Pothos does: first ?? last ?? default, capped). */
  const pageSize = (paged: PagedField, node: Parameters<typeof argumentValue>[0]): number => {
    const first = argumentValue(node, 'first');
    const last = argumentValue(node, 'last');
    const asked = first ?? last;
    // Anything else fails coercion before a resolver runs; weigh it as the largest page anyway.
    const size =
      asked === null || asked === undefined ? paged.defaultSize : typeof asked === 'number' ? asked : Infinity;
    return Math.min(Math.max(0, Math.ceil(Number.isNaN(size) ? paged.maxSize : size)), paged.maxSize);
  };

  const fieldOf = (type: GraphQLNamedType | undefined, name: string): GraphQLField<unknown, unknown> | undefined =>
    type && (isObjectType(type) || isInterfaceType(type)) ? type.getFields()[name] : undefined;

  const memo = new Map<string, number>();
  let result = 0;
  const stack: Frame[] = [
    {
      selections: operation.selectionSet.selections,
      index: 0,
      type: schema.getRootType(operation.operation) ?? undefined,
      page: undefined,
      total: 0,
      done: (total) => (result = total),
    },
  ];
  while (stack.length > 0) {
    const frame = stack[stack.length - 1]!;
    const selection = frame.selections[frame.index++];
    if (!selection) {
      stack.pop();
      frame.done(frame.total);
      continue;
    }
    if (selection.kind === Kind.FIELD) {
      const name = selection.name.value;
      // Introspection is weighed by nothing, as graphql-armor did (and is refused where it is off).
      if (name === '__schema' || name === '__type') continue;
      const field = fieldOf(frame.type, name);
      if (!field || !selection.selectionSet) {
        frame.total += 1;
        continue;
      }
      const key = `${frame.type!.name}.${name}`;
      const isList = isListType(getNullableType(field.type));
      const paged =
        options.pagedFields[key] ??
        (field.args.some((arg) => arg.name === 'first' || arg.name === 'last') ? options.connection : undefined);
      let multiplier = 1;
      let page: Frame['page'];
      if (paged) {
        const size = pageSize(paged, selection);
        if (isList) multiplier = size;
        else page = { list: paged.list, size };
      } else if (isList) {
        const byArgument = options.listsByArgument[key];
        const sized = byArgument === undefined ? undefined : argumentValue(selection, byArgument);
        if (frame.page && frame.page.list === name) multiplier = frame.page.size;
        else if (Array.isArray(sized)) multiplier = sized.length;
        else if (byArgument !== undefined && sized !== undefined && sized !== null) multiplier = 1;
        else multiplier = options.listSizes[key] ?? options.defaultListSize;
      }
      stack.push({
        selections: selection.selectionSet.selections,
        index: 0,
        type: getNamedType(field.type),
        page,
        total: 0,
        done: (total) => (frame.total += multiplier * (1 + total)),
      });
    } else if (selection.kind === Kind.INLINE_FRAGMENT) {
      const condition = selection.typeCondition ? schema.getType(selection.typeCondition.name.value) : frame.type;
      stack.push({
        selections: selection.selectionSet.selections,
        index: 0,
        type: condition && isCompositeType(condition) ? condition : undefined,
        page: frame.page,
        total: 0,
        done: (total) => (frame.total += total),
      });
    } else {
      const name = selection.name.value;
      const key = `${name}:${frame.page ? `${frame.page.list}:${frame.page.size}` : ''}`;
      const known = memo.get(key);
      if (known !== undefined) {
        // A fragment in progress (a cycle, which validation refuses anyway) weighs nothing more.
        frame.total += Math.max(known, 0);
        continue;
      }
      const fragment = fragments.get(name);
      if (!fragment) continue;
      memo.set(key, -1);
      const condition = schema.getType(fragment.typeCondition.name.value);
      stack.push({
        selections: fragment.selectionSet.selections,
        index: 0,
        type: condition && isCompositeType(condition) ? condition : undefined,
        page: frame.page,
        total: 0,
        done: (total) => {
          memo.set(key, total);
          frame.total += total;
        },
      });
    }
  }
  return { cost: result, usesVariables };
}

/**
 * Refuses an operation whose estimated cost is over `options.maxCost` before it runs, with its
 * variables known: over HTTP and graphql-ws alike (both execute through this envelop).
 */
export function queryCostLimit(options: CostOptions): Plugin {
  // Yoga's parser cache hands out one document object per query text: a cost that no variable
  // enters is computed once per document and operation.
  const fixed = new WeakMap<DocumentNode, Map<string | null, number>>();
  const refusal = (args: ExecutionArgs) => {
    const operation = getOperationAST(args.document, args.operationName);
    // No such operation: execution itself says so.
    if (!operation) return null;
    const name = args.operationName ?? null;
    let cost = fixed.get(args.document)?.get(name);
    if (cost === undefined) {
      const estimate = operationCost(args.schema, args.document, operation, args.variableValues, options);
      cost = estimate.cost;
      if (!estimate.usesVariables) {
        const byName = fixed.get(args.document) ?? new Map<string | null, number>();
        byName.set(name, cost);
        fixed.set(args.document, byName);
      }
    }
    if (cost <= options.maxCost) return null;
    return {
      errors: [
        new GraphQLError(`Query Cost limit of ${options.maxCost} exceeded, found ${cost}.`, {
          extensions: { code: 'QUERY_TOO_COSTLY' },
        }),
      ],
    };
  };
  return {
    onExecute: ({ args, setResultAndStopExecution }) => {
      const refused = refusal(args);
      if (refused) setResultAndStopExecution(refused);
    },
    onSubscribe: ({ args, setResultAndStopExecution }) => {
      const refused = refusal(args);
      if (refused) setResultAndStopExecution(refused);
    },
  };
}
