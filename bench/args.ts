/** `--name=N` from the command line of a bench script, or `fallback` when not given. */
export function numberArg(name: string, fallback: number): number {
  const given = process.argv.find((a) => a.startsWith(`--${name}=`));
  return given ? Number(given.split('=')[1]) : fallback;
}
