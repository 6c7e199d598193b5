import { UsageError } from '../errors.js';
import { defineCommand, type Command } from './command.js';

/**
 * A bash completion script for the command tree: commands, a group's subcommands, then the
 * command's flags. zsh runs the same script through its bash compatibility layer (bashcompinit).
 */
export function completionScript(commands: Command[], shell: 'bash' | 'zsh'): string {
  const words = (list: string[]) => list.join(' ');
  const flagsCase = (command: Command, indent: string) =>
    `${indent}${command.name}) words="${words(command.flags)}" ;;`;
  const cases = commands.map((command) =>
    command.subcommands
      ? `    ${command.name})
      if [ "$COMP_CWORD" -eq 2 ]; then words="${words(command.subcommands.map((c) => c.name))}"; else
        case "\${COMP_WORDS[2]}" in
${command.subcommands.map((sub) => flagsCase(sub, '          ')).join('\n')}
        esac
      fi ;;`
      : flagsCase(command, '    '),
  );
  const prelude =
    shell === 'zsh'
      ? '# drydock completion for zsh: eval "$(drydock completion zsh)" in ~/.zshrc\nautoload -U +X compinit && compinit\nautoload -U +X bashcompinit && bashcompinit\n'
      : '# drydock completion for bash: eval "$(drydock completion bash)" in ~/.bashrc\n';
  return `${prelude}_drydock() {
  local cur="\${COMP_WORDS[COMP_CWORD]}" words=""
  if [ "$COMP_CWORD" -eq 1 ]; then
    words="${words([...commands.map((c) => c.name), '--help'])}"
  else
    case "\${COMP_WORDS[1]}" in
${cases.join('\n')}
    esac
  fi
  COMPREPLY=($(compgen -W "$words" -- "$cur"))
}
complete -F _drydock drydock
`;
}

/** `drydock completion bash|zsh`; `list` gives the commands (this one among them). */
export function completionCommand(list: () => Command[]): Command {
  return defineCommand({
    name: 'completion',
    summary: 'print a shell completion script (bash or zsh)',
    help: `
Usage: drydock completion bash|zsh

Prints a script that completes drydock's commands, subcommands and flags. Load it from your
shell's start-up file:

  bash:  eval "$(drydock completion bash)"     (in ~/.bashrc)
  zsh:   eval "$(drydock completion zsh)"      (in ~/.zshrc)`,
    options: {},
    async run({ positionals }, context) {
      const shell = positionals[0] ?? 'bash';
      if (shell !== 'bash' && shell !== 'zsh') throw new UsageError(`unknown shell "${shell}"; expected bash or zsh`);
      context.io.stdout.write(completionScript(list(), shell));
      return 0;
    },
  });
}
