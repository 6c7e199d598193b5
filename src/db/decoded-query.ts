import pg from 'pg';

// One of the allocator's prepared statements, sent on a pg client and decoded into rows here.
//
// Why not pg's own query objects: pg describes a named statement's result on every run, and for
// every description it builds the row's shape anew (a prototype-less object copied into a template),
// then copies each row out of that template and emits an event per row. For the allocator's
// statements, run thousands of times a second with the same few dozen shapes, building the shape
// cost the server more than decoding the rows. A statement's shape is kept here by its name and
// used while the description matches it. It is pg's Query still (a pipelined connection takes no
// other kind), and its answer, errors and row values are pg's, decoded by the same type parsers.

type TypeParser = (value: string) => unknown;

interface FieldDescription {
  name: string;
  dataTypeID: number;
  format: string;
}

/** A result's shape: its columns' names and parsers, and an empty row with those columns in order. */
interface RowShape {
  types: pg.CustomTypesConfig;
  fields: readonly FieldDescription[];
  parsers: TypeParser[];
  empty: Record<string, unknown>;
}

/** pg's own state of a query this class reads and writes (pg/lib/query.js, pg/lib/result.js). */
interface QueryState {
  _result: { rows: unknown[]; fields: readonly FieldDescription[] };
  _canceledDueToError: unknown;
}

const shapes = new Map<string, RowShape>();
/** As the statements' names (statements.ts): the shapes are finite, and so is this. */
const MAX_SHAPES = 10_000;

function sameFields(a: readonly FieldDescription[], b: readonly FieldDescription[]): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) {
    const [x, y] = [a[i]!, b[i]!];
    if (x.name !== y.name || x.dataTypeID !== y.dataTypeID || x.format !== y.format) return false;
  }
  return true;
}

function shapeOf(name: string, fields: readonly FieldDescription[], types: pg.CustomTypesConfig): RowShape {
  const kept = shapes.get(name);
  if (kept && kept.types === types && sameFields(kept.fields, fields)) return kept;
  const shape: RowShape = {
    types,
    fields,
    parsers: fields.map(
      (field) => types.getTypeParser(field.dataTypeID, (field.format || 'text') as 'text') as TypeParser,
    ),
    // fromEntries defines each column as an own property, whatever its name (`__proto__` too).
    empty: Object.fromEntries(fields.map((field) => [field.name, null])),
  };
  if (shapes.size >= MAX_SHAPES) shapes.clear();
  shapes.set(name, shape);
  return shape;
}

class DecodedQuery extends pg.Query {
  private shape: RowShape | undefined;

  constructor(config: pg.QueryConfig & { name: string; types: pg.CustomTypesConfig }) {
    // Given its text alone, pg copies no configuration object (it copies a given one, property by
    // property); the rest is set as pg's own constructor would set it.
    super(config.text);
    const self = this as unknown as { name: string; values: unknown[] | undefined; types: pg.CustomTypesConfig };
    self.name = config.name;
    self.values = config.values;
    self.types = config.types;
  }

  private get state(): QueryState {
    return this as unknown as QueryState;
  }

  /** One statement of the extended protocol: one description, then its rows. */
  handleRowDescription(message: { fields: FieldDescription[] }): void {
    const self = this as unknown as { name: string; types: pg.CustomTypesConfig };
    this.shape = shapeOf(self.name, message.fields, self.types);
    this.state._result.fields = message.fields;
  }

  handleDataRow(message: { fields: (string | null)[] }): void {
    const state = this.state;
    if (state._canceledDueToError) return;
    const { parsers, empty, fields } = this.shape!;
    const values = message.fields;
    const row: Record<string, unknown> = { ...empty };
    try {
      for (let i = 0; i < values.length; i++) {
        const value = values[i];
        row[fields[i]!.name] = value === null || value === undefined ? null : parsers[i]!(value);
      }
    } catch (error) {
      // As pg does: the query fails with it once the server has answered in full.
      state._canceledDueToError = error;
      return;
    }
    state._result.rows.push(row);
  }
}

/** A statement as statements.ts makes it: named, with the allocator's type parsers. */
export type NamedStatement = pg.QueryConfig & { name: string; types: pg.CustomTypesConfig };

/**
 * Runs `statement` on `client` and decodes its rows as above. On a pool, it runs on one of the
 * pool's connections, given back when it is answered: pg-pool answers a query object with a
 * promise of its result, as it answers any query (its typings say it returns the object).
 */
export function runDecoded(client: pg.Pool | pg.ClientBase, statement: NamedStatement): Promise<pg.QueryResult> {
  const query = new DecodedQuery(statement);
  if (isPool(client)) return client.query(query) as unknown as Promise<pg.QueryResult>;
  return new Promise<pg.QueryResult>((resolve, reject) => {
    (query as unknown as { callback: (error: Error | undefined, result: pg.QueryResult) => void }).callback = (
      error,
      result,
    ) => (error ? reject(error) : resolve(result));
    client.query(query);
  });
}

const isPool = (client: pg.Pool | pg.ClientBase): client is pg.Pool => 'totalCount' in client;
