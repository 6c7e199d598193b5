import { z } from 'zod';
import type { Lease, Resource } from '../../generated/prisma/client.js';
import { commitPattern, directoryProblem, nestedDirectories, refProblem, urlProblem } from './names.js';

// What a working-copy lease asks for, and what a working-copy resource records about itself.
// The shapes are documented in ../working-copy.ts.

const refName = (what: string) =>
  z.string().superRefine((ref, issues) => {
    const problem = refProblem(ref);
    if (problem) issues.addIssue({ code: 'custom', message: `the ${what} "${ref}" ${problem}` });
  });

const repository = z
  .strictObject({
    url: z.string().superRefine((url, issues) => {
      const problem = urlProblem(url);
      if (problem) issues.addIssue({ code: 'custom', message: `the repository URL ${problem}` });
    }),
    commit: z.string().regex(commitPattern, 'a commit is a hexadecimal hash of 7 to 64 digits').optional(),
    branch: refName('branch').optional(),
    ref: refName('ref')
      .refine((ref) => ref.startsWith('refs/'), 'a ref starts with "refs/" (use `branch` for a branch name)')
      .optional(),
    /** Squash-merged on top of the checkout, in order: branch names or full refs. */
    merges: z.array(refName('ref to merge')).max(50).default([]),
  })
  .refine(
    (r) => [r.commit, r.branch, r.ref].filter((v) => v !== undefined).length <= 1,
    'give at most one of commit, branch or ref (none: the remote HEAD)',
  );

export type RepositoryRequest = z.infer<typeof repository>;

export const workingCopyLeaseAttributes = z.strictObject({
  /** Directory inside the copy → what to check out there. */
  repositories: z.record(z.string(), repository).superRefine((repositories, issues) => {
    const directories = Object.keys(repositories);
    if (directories.length === 0)
      issues.addIssue({ code: 'custom', message: 'a working copy needs at least one repository' });
    for (const directory of directories) {
      const problem = directoryProblem(directory);
      if (problem)
        issues.addIssue({ code: 'custom', path: [directory], message: `directory "${directory}" ${problem}` });
    }
    const nested = nestedDirectories(directories);
    if (nested)
      issues.addIssue({
        code: 'custom',
        path: [nested[1]],
        message: `directory "${nested[1]}" is inside directory "${nested[0]}" (one repository per directory)`,
      });
  }),
  /** Only copies with exactly these directories, no others. */
  strict: z.boolean().default(false),
});

export type WorkingCopyLeaseAttributes = z.infer<typeof workingCopyLeaseAttributes>;

/** The lease's request, or null when its attributes are not a working-copy request. */
export function leaseRequest(lease: Lease): WorkingCopyLeaseAttributes | null {
  const parsed = workingCopyLeaseAttributes.safeParse(lease.attributes ?? {});
  return parsed.success ? parsed.data : null;
}

const resourceAttributes = z.object({
  /** Directory → repository URL: what the copy was cloned with. */
  repositories: z.record(z.string(), z.string()),
  /** The blueprint's root when the copy was allocated (the config may change later). */
  root: z.string(),
  /** Set on activation. */
  path: z.string().optional(),
  hostLeaseId: z.number().int().positive().optional(),
});

export type WorkingCopyResourceAttributes = z.infer<typeof resourceAttributes>;

export function copyAttributes(resource: Resource): WorkingCopyResourceAttributes {
  const parsed = resourceAttributes.safeParse(resource.attributes);
  if (!parsed.success) throw new Error(`resource ${resource.id} has no working-copy attributes`);
  return parsed.data;
}

/** The directory → URL map a lease needs, for matching against copies. */
export const urlsOf = (request: WorkingCopyLeaseAttributes): Record<string, string> =>
  Object.fromEntries(Object.entries(request.repositories).map(([directory, r]) => [directory, r.url]));
