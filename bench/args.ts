/** A bench script's usage error: the message and exit code 2, rather than a run with NaN in it. */
function refuse(message: string): never {
  console.error(message);
  process.exit(2);
}

/** `--name=N` from the command line of a bench script, or `fallback` when not given. */
export function numberArg(name: string, fallback: number): number {
  const given = process.argv.find((a) => a.startsWith(`--${name}=`));
  if (!given) return fallback;
  const text = given.slice(`--${name}=`.length);
  const value = Number(text);
  if (text === '' || !Number.isFinite(value) || value < 0)
    refuse(`--${name} wants a number of 0 or more, not "${text}"`);
  return value;
}

/** The first argument that is not an option, as a count of 1 or more, or `fallback` when none is given. */
export function countArg(fallback: number): number {
  const given = process.argv.slice(2).find((a) => !a.startsWith('--'));
  if (given === undefined) return fallback;
  const value = Number(given);
  if (!Number.isInteger(value) || value < 1) refuse(`the count wants a whole number of 1 or more, not "${given}"`);
  return value;
}
