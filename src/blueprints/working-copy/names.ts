import { posix } from 'node:path';

// Checks on the strings that end up in git's argv and in paths on the host. Each returns why a
// value is refused, or null when it is fine. They are stricter than git itself: a value that
// starts with `-` could be read as an option, and a directory must stay inside the working copy
// whatever the host's shell or git version makes of it.

// eslint-disable-next-line no-control-regex
const control = /[\u0000-\u001f\u007f]/;

/** A directory of a repository map: relative, inside the copy, one repository per directory. */
export function directoryProblem(directory: string): string | null {
  if (directory.length === 0) return 'a directory name is required';
  if (directory.length > 1024) return 'is longer than 1024 characters';
  if (control.test(directory)) return 'contains a control character';
  if (directory.includes('\\')) return 'contains a backslash (use "/" between directories)';
  if (directory.startsWith('/')) return 'is an absolute path (directories are relative to the working copy)';
  for (const segment of directory.split('/')) {
    if (segment === '') return 'has an empty path segment (a leading, trailing or doubled "/")';
    if (segment === '.' || segment === '..')
      return `"${segment}" is not allowed (a directory stays inside the working copy)`;
    if (segment.startsWith('-')) return `segment "${segment}" starts with "-"`;
    if (segment === '.git') return '".git" is not allowed';
  }
  return null;
}

/** Two directories of one map where one would be cloned inside the other's working tree. */
export function nestedDirectories(directories: readonly string[]): [string, string] | null {
  const sorted = [...directories].sort();
  for (let i = 1; i < sorted.length; i++) {
    const outer = sorted[i - 1]!;
    const inner = sorted[i]!;
    if (inner.startsWith(`${outer}/`)) return [outer, inner];
  }
  return null;
}

/** A repository URL for `git clone`. */
export function urlProblem(url: string): string | null {
  if (url.length === 0) return 'a repository URL is required';
  if (url.length > 2048) return 'is longer than 2048 characters';
  if (url.startsWith('-')) return 'starts with "-"';
  if (control.test(url) || /\s/.test(url)) return 'contains whitespace or a control character';
  // `<transport>::<address>` runs a remote helper (`ext::` runs any command).
  if (/^[A-Za-z0-9+.-]+::/.test(url)) return 'names a git remote helper ("transport::address"), which is not allowed';
  return null;
}

/** A ref or branch name, by the rules of git check-ref-format (plus: no leading "-"). */
export function refProblem(ref: string): string | null {
  if (ref.length === 0) return 'is empty';
  if (ref.length > 1024) return 'is longer than 1024 characters';
  if (ref.startsWith('-')) return 'starts with "-"';
  if (control.test(ref) || /[\s~^:?*[\\]/.test(ref)) return 'contains a character git does not allow in ref names';
  if (ref.includes('..') || ref.includes('@{') || ref === '@')
    return 'contains a sequence git does not allow in ref names';
  if (ref.endsWith('.') || ref.endsWith('/')) return 'ends with "." or "/"';
  for (const segment of ref.split('/')) {
    if (segment === '') return 'has an empty path segment';
    if (segment.startsWith('.')) return 'has a segment that starts with "."';
    if (segment.endsWith('.lock')) return 'has a segment that ends with ".lock"';
  }
  return null;
}

/** A full or abbreviated commit hash (SHA-1 or SHA-256). */
export const commitPattern = /^[0-9a-fA-F]{7,64}$/;

/** The blueprint's root: an absolute, normalized path that is not "/" itself. */
export function rootProblem(root: string): string | null {
  if (!root.startsWith('/')) return 'must be an absolute path';
  if (root === '/') return 'must not be "/"';
  if (control.test(root)) return 'contains a control character';
  if (posix.normalize(root) !== root || root.endsWith('/'))
    return 'must be normalized (no "..", ".", doubled or trailing "/")';
  return null;
}

/**
 * Where a resource's copy lives: `<root>/<resource id>`. Every removal re-derives and re-checks it,
 * so that a damaged attribute can never make teardown remove something else.
 */
export function copyPath(root: string, resourceId: number): string {
  const problem = rootProblem(root);
  if (problem) throw new Error(`working-copy root "${root}" ${problem}`);
  if (!Number.isSafeInteger(resourceId) || resourceId <= 0) throw new Error(`bad resource id ${resourceId}`);
  return `${root}/${resourceId}`;
}

/** A repository's directory inside a copy. */
export function repositoryPath(copy: string, directory: string): string {
  const problem = directoryProblem(directory);
  if (problem) throw new Error(`directory "${directory}" ${problem}`);
  return `${copy}/${directory}`;
}
