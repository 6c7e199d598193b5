import { z } from 'zod';
import { rootProblem } from './names.js';

// A working-copy blueprint's config: where copies go on the host, and which host to lease.

const hostAttribute = z.union([z.string(), z.number(), z.boolean()]);

const hostLease = z.strictObject({
  /** The resource type of the host lease. */
  resourceType: z.string().trim().min(1).max(100).default('host'),
  /** The host lease's attributes (a host pool matches them against its bindings). */
  attributes: z.record(z.string(), hostAttribute).default({}),
  /** Only these blueprints may serve the host lease (empty: any the working-copy blueprint is authorized on). */
  blueprintIds: z.array(z.number().int().positive()).default([]),
});

export const workingCopyConfig = z.strictObject({
  /** Copies are made in `<root>/<resource id>` on the host. */
  root: z.string().superRefine((root, issues) => {
    const problem = rootProblem(root);
    if (problem) issues.addIssue({ code: 'custom', message: `the root ${problem}` });
  }),
  host: hostLease.prefault({}),
  /** Each git command (a clone, a fetch) is killed after this long. */
  commandTimeoutSeconds: z.number().int().min(1).max(86_400).default(900),
});

export type WorkingCopyConfig = z.infer<typeof workingCopyConfig>;
