import pg from 'pg';
import { decodeRow, rowShape, type FieldDescription, type RowShape } from './row-shapes.js';
import type { NamedStatement } from './statements.js';

// One of the allocator's prepared statements, sent on a pg client and decoded into rows here.
//
// Why not pg's own query objects: for every run of a named statement pg builds its row's shape
// anew (a prototype-less object copied into a template), then copies each row out of it and emits
// an event per row; row-shapes.ts keeps the shape instead. This is pg's Query still (a pipelined
// connection takes no other kind), and its answer, errors and row values are pg's, decoded by the
// same type parsers.

/** pg's own state of a query this class reads and writes (pg/lib/query.js, pg/lib/result.js). */
interface QueryState {
  _result: { rows: unknown[]; fields: readonly FieldDescription[] };
  _canceledDueToError: unknown;
}

class DecodedQuery extends pg.Query {
  private shape: RowShape | undefined;

  constructor(config: NamedStatement) {
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
    this.shape = rowShape(self.name, message.fields, self.types);
    this.state._result.fields = message.fields;
  }

  handleDataRow(message: { fields: (string | null)[] }): void {
    const state = this.state;
    if (state._canceledDueToError) return;
    let row: Record<string, unknown>;
    try {
      row = decodeRow(this.shape!, message.fields);
    } catch (error) {
      // As pg does: the query fails with it once the server has answered in full.
      state._canceledDueToError = error;
      return;
    }
    state._result.rows.push(row);
  }
}

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
