// pg's own conversion of a parameter to its text form (arrays as array literals, objects as
// JSON, buffers as bytea), which @types/pg does not declare.
declare module 'pg/lib/utils.js' {
  export function prepareValue(value: unknown): string | Buffer | null;
}
