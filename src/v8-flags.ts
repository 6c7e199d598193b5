/**
 * The V8 flag the server sets as it starts, or none when the operator has chosen otherwise.
 *
 * `--always-sparkplug` compiles every function to V8's baseline code on its first call instead of
 * after many runs in the interpreter: a process that has just started meets its load with code it
 * has never run, and interpreted, the first grants' request, scheduling pass and events were slow
 * enough that requests queued behind them for the first second (docs/performance.md, "Baseline
 * code from the first call"). A Sparkplug flag given on node's command line
 * (`--no-always-sparkplug`, `--no-sparkplug`, in either spelling) is the operator's choice and is
 * left alone: set after it, this one would override it. (Node refuses V8 flags like these in
 * NODE_OPTIONS, so its command line is the only place one can come from.)
 */
export function serverV8Flag(execArgv: readonly string[]): string | undefined {
  return execArgv.some((flag) => /^--(no[-_]?)?(always[-_])?sparkplug(=|$)/.test(flag))
    ? undefined
    : '--always-sparkplug';
}
