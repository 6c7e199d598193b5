import { execFileSync } from 'node:child_process';

/**
 * Node cannot raise its own RLIMIT_NOFILE; report the limit so a run short of descriptors says
 * why. The soft limit is inherited, so `ulimit -n N` before `npm run bench` is the way to raise it.
 */
export function checkFileLimit(wanted: number): string {
  let limit = 'unknown';
  try {
    limit = execFileSync('sh', ['-c', 'ulimit -n'], { encoding: 'utf8' }).trim();
  } catch {
    return limit;
  }
  if (limit !== 'unlimited' && Number(limit) < wanted) {
    process.stderr.write(
      `[bench] open-file limit ${limit} is below the ${wanted} this run needs: run \`ulimit -n ${wanted}\` first\n`,
    );
  }
  return limit;
}
