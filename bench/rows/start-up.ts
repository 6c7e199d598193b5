import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { projectRoot } from '../../src/db/migrations-folder.js';
import { now, percentile } from '../stats.js';
import type { Row } from '../table.js';

/** `drydock --help` as a user runs the installed bin: a fresh node process each time. */
export function cliHelpTimes(runs: number): number[] {
  const bin = join(projectRoot, 'dist', 'cli', 'bin.js');
  return Array.from({ length: runs }, () => {
    const started = now();
    const result = spawnSync(process.execPath, [bin, '--help'], { encoding: 'utf8' });
    if (result.status !== 0) throw new Error(`drydock --help exited with ${result.status}: ${result.stderr}`);
    return now() - started;
  });
}

export function startUpRows(helpMs: number[], servers: { label: string; ms: number }[]): Row[] {
  const median = percentile(helpMs, 50);
  return [
    {
      row: `\`drydock --help\` (compiled bin, ${helpMs.length} runs)`,
      result: `median ${median.toFixed(0)} ms, max ${Math.max(...helpMs).toFixed(0)} ms`,
      target: '< 300 ms',
      met: median < 300,
    },
    ...servers.map(({ label, ms }) => ({
      row: `server start to ready: ${label}`,
      result: `${(ms / 1_000).toFixed(2)} s`,
      target: '< 10 s',
      met: ms < 10_000,
    })),
  ];
}
