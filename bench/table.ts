export interface Row {
  row: string;
  result: string;
  target: string;
  /** true met, false missed, undefined no target or not measured. */
  met: boolean | undefined;
}

export function markdownTable(rows: Row[]): string {
  const lines = ['| row | result | target | met? |', '| --- | --- | --- | --- |'];
  for (const r of rows) {
    const met = r.met === undefined ? '—' : r.met ? 'met' : '**missed**';
    lines.push(`| ${r.row} | ${r.result} | ${r.target} | ${met} |`);
  }
  return lines.join('\n');
}
