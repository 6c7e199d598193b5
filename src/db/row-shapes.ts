import type pg from 'pg';

// The rows of the allocator's prepared statements, decoded from PostgreSQL's wire protocol on
// either database (decoded-query.ts on plain pg, embedded-sql.ts on PGlite).
//
// Why shapes are kept: a named statement's columns are described on every run, and building a
// row's shape (names, parsers, an empty row to copy) for every description cost more than decoding
// the rows, for statements run thousands of times a second with the same few dozen shapes. A
// statement's shape is kept by its name and used while the description matches it.

type TypeParser = (value: string) => unknown;

export interface FieldDescription {
  name: string;
  dataTypeID: number;
  format: string | number;
}

/** A result's shape: its columns and parsers, and an empty row with those columns in order. */
export interface RowShape {
  types: pg.CustomTypesConfig;
  fields: readonly FieldDescription[];
  parsers: TypeParser[];
  empty: Record<string, unknown>;
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

/** The shape of statement `name`'s rows as `fields` describe them, kept or made now. */
export function rowShape(name: string, fields: readonly FieldDescription[], types: pg.CustomTypesConfig): RowShape {
  const kept = shapes.get(name);
  if (kept && kept.types === types && sameFields(kept.fields, fields)) return kept;
  const shape: RowShape = {
    types,
    fields,
    // Text only: neither driver asks for results in binary.
    parsers: fields.map((field) => types.getTypeParser(field.dataTypeID, 'text') as TypeParser),
    // fromEntries defines each column as an own property, whatever its name (`__proto__` too).
    empty: Object.fromEntries(fields.map((field) => [field.name, null])),
  };
  if (shapes.size >= MAX_SHAPES) shapes.clear();
  shapes.set(name, shape);
  return shape;
}

/** A row of `shape` from its values' text (a parser's error is thrown). */
export function decodeRow(shape: RowShape, values: readonly (string | null | undefined)[]): Record<string, unknown> {
  const { parsers, empty, fields } = shape;
  const row: Record<string, unknown> = { ...empty };
  for (let i = 0; i < values.length; i++) {
    const value = values[i];
    row[fields[i]!.name] = value === null || value === undefined ? null : parsers[i]!(value);
  }
  return row;
}
