import { describe, expect, it } from 'vitest';
import { workingCopyLeaseAttributes } from '../../src/blueprints/working-copy/attributes.js';
import { workingCopyConfig } from '../../src/blueprints/working-copy/config.js';
import * as git from '../../src/blueprints/working-copy/git.js';
import { copyPath } from '../../src/blueprints/working-copy/names.js';

// What a working-copy lease and blueprint may say, and the git argv built from it.

const url = 'https://git.example.com/app.git';
const parse = (repositories: Record<string, unknown>, extra: Record<string, unknown> = {}) =>
  workingCopyLeaseAttributes.safeParse({ repositories, ...extra });
const problem = (repositories: Record<string, unknown>) => {
  const parsed = parse(repositories);
  if (parsed.success) throw new Error(`accepted ${JSON.stringify(repositories)}`);
  return parsed.error.issues.map((i) => ({ path: i.path, message: i.message }));
};

describe('working-copy lease attributes', () => {
  it('accepts a map of directories, each at a commit, branch, ref or the remote HEAD, with merges', () => {
    const parsed = parse({
      src: { url, branch: 'release/1.2' },
      'vendor/lib': { url: 'git@example.com:lib.git', commit: 'a'.repeat(40), merges: ['feature', 'refs/changes/2/1'] },
      docs: { url: 'file:///srv/docs.git', ref: 'refs/changes/1/1' },
      tools: { url: '/srv/tools.git' },
    });
    expect(parsed.success).toBe(true);
    expect(parsed.data).toMatchObject({ strict: false, repositories: { tools: { merges: [] } } });
  });

  it.each([
    ['..', '".." is not allowed'],
    ['src/../../etc', '".." is not allowed'],
    ['/etc', 'is an absolute path'],
    ['-rf', 'starts with "-"'],
    ['src/-x', 'starts with "-"'],
    ['a//b', 'empty path segment'],
    ['src/', 'empty path segment'],
    ['./src', '"." is not allowed'],
    ['a\\b', 'backslash'],
    ['.git', '".git" is not allowed'],
    ['', 'a directory name is required'],
  ])('refuses the directory %j', (directory, message) => {
    const [issue] = problem({ [directory]: { url } });
    expect(issue!.path).toEqual(['repositories', directory]);
    expect(issue!.message).toContain(message);
  });

  it('refuses a directory inside another one', () => {
    expect(problem({ src: { url }, 'src/lib': { url } })).toEqual([
      {
        path: ['repositories', 'src/lib'],
        message: 'directory "src/lib" is inside directory "src" (one repository per directory)',
      },
    ]);
    expect(parse({ src: { url }, 'src-lib': { url } }).success).toBe(true);
  });

  it.each([
    [{ url: '--upload-pack=touch /tmp/x' }, 'the repository URL starts with "-"'],
    [{ url: 'ext::sh%-c%touch%/tmp/x' }, 'remote helper'],
    [{ url: 'https://x/a b' }, 'whitespace'],
    [{ url }, null],
    [{ url, branch: '-f' }, 'the branch "-f" starts with "-"'],
    [{ url, branch: 'a..b' }, 'not allow'],
    [{ url, ref: 'refs/x:refs/y' }, 'not allow'],
    [{ url, ref: 'changes/1/1' }, 'a ref starts with "refs/"'],
    [{ url, ref: '--output=/tmp/x' }, 'starts with "-"'],
    [{ url, merges: ['--abort'] }, 'the ref to merge "--abort" starts with "-"'],
    [{ url, commit: '--help' }, 'hexadecimal'],
    [{ url, commit: 'abc' }, 'hexadecimal'],
    [{ url, commit: 'a'.repeat(40), branch: 'main' }, 'at most one of commit, branch or ref'],
    [{ url, tag: 'v1' }, 'Unrecognized key'],
  ])('checks %j', (repository, message) => {
    const parsed = parse({ src: repository });
    if (message === null) return expect(parsed.success).toBe(true);
    expect(parsed.success).toBe(false);
    expect(parsed.error!.issues.map((i) => i.message).join('; ')).toContain(message);
  });

  it('needs at least one repository and nothing but repositories and strict', () => {
    expect(problem({})[0]!.message).toBe('a working copy needs at least one repository');
    expect(parse({ src: { url } }, { strict: 'yes' }).success).toBe(false);
    expect(parse({ src: { url } }, { platform: 'linux' }).success).toBe(false);
  });
});

describe('working-copy config', () => {
  it('defaults the host lease to any "host" and validates the root', () => {
    expect(workingCopyConfig.parse({ root: '/var/drydock' })).toEqual({
      root: '/var/drydock',
      host: { resourceType: 'host', attributes: {}, blueprintIds: [] },
      commandTimeoutSeconds: 900,
    });
    for (const root of ['var/drydock', '/', '/var/../etc', '/var/drydock/', '/var//x'])
      expect(workingCopyConfig.safeParse({ root }).success, root).toBe(false);
  });

  it('puts each copy in <root>/<resource id> and refuses anything else', () => {
    expect(copyPath('/var/drydock', 12)).toBe('/var/drydock/12');
    expect(() => copyPath('/', 12)).toThrow();
    expect(() => copyPath('/var/drydock', 0)).toThrow();
    expect(() => copyPath('/var/drydock', 1.5)).toThrow();
  });
});

describe('working-copy git commands', () => {
  const request = (extra: Record<string, unknown>) =>
    workingCopyLeaseAttributes.parse({ repositories: { src: { url, ...extra } } }).repositories['src']!;
  const afterDashes = (argv: readonly string[]) => argv.slice(argv.indexOf('--') + 1);

  it('ends the options before anything that came from a lease', () => {
    expect(afterDashes(git.clone(url, '/r/1/src'))).toEqual([url, '/r/1/src']);
    expect(afterDashes(git.removeDirectory('/r/1'))).toEqual(['/r/1']);
    expect(afterDashes(git.fetchRefs(request({ ref: 'refs/changes/1/1', merges: ['feature'] }))!)).toEqual([
      '+refs/changes/1/1:refs/drydock/target',
      '+refs/heads/feature:refs/drydock/merge/0',
    ]);
    expect(afterDashes(git.fetchCommit('abcdef0'))).toEqual(['abcdef0']);
    expect(git.checkout(request({ commit: 'abcdef0' })).at(-1)).toBe('--');
  });

  it('fetches the target by name unless it is a commit, and the remote HEAD by default', () => {
    expect(git.targetSource(request({}))).toBe('HEAD');
    expect(git.targetSource(request({ branch: 'main' }))).toBe('refs/heads/main');
    expect(git.targetSource(request({ commit: 'abcdef0' }))).toBeNull();
    expect(git.fetchRefs(request({ commit: 'abcdef0' }))).toBeNull();
    expect(git.checkout(request({ branch: 'main' })).slice(-4)).toEqual(['-B', 'main', 'refs/drydock/target', '--']);
  });

  it('runs no hooks and no remote helpers of the copy', () => {
    for (const argv of [git.clone(url, '/r/1/src'), git.fetchAll(), ...git.clean(), ...git.squashMerge(0, 'x')]) {
      expect(argv).toContain('core.hooksPath=/dev/null');
      expect(argv).toContain('protocol.ext.allow=never');
    }
  });
});
