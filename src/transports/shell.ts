// Building the one string an ssh server hands to the remote user's shell. ssh joins its arguments
// with spaces and the remote shell splits them again, so every word must be quoted here, or an
// argument such as "a; rm -rf ~" would run as two commands.

// '=' is not plain: a bare first word FOO=x would be taken for an assignment, not the program.
const PLAIN = /^[A-Za-z0-9_@%+:,./-]+$/;
const ENV_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;

/** One word for a POSIX shell: left bare when it is plainly safe, else in single quotes. */
export function shellQuote(word: string): string {
  if (PLAIN.test(word)) return word;
  return `'${word.replaceAll("'", `'\\''`)}'`;
}

/** `cd DIR && NAME=value ... PROGRAM ARGS...`, every part quoted; assumes a POSIX login shell. */
export function remoteCommand(
  argv: readonly string[],
  options: { cwd?: string; env?: Readonly<Record<string, string>> } = {},
): string {
  if (argv.length === 0) throw new Error('a command needs at least a program name');
  const assignments = Object.entries(options.env ?? {}).map(([name, value]) => {
    if (!ENV_NAME.test(name)) throw new Error(`${JSON.stringify(name)} is not a valid environment variable name`);
    return `${name}=${shellQuote(value)}`;
  });
  const command = [...assignments, ...argv.map(shellQuote)].join(' ');
  return options.cwd === undefined ? command : `cd -- ${shellQuote(options.cwd)} && ${command}`;
}
