import { z } from 'zod';

// The `external` blueprint's config. Timings are bounded so that a typo cannot turn a poll into a
// busy loop or a sweep into a once-a-year event.

export const externalConfig = z
  .object({
    /** Base URL of the provisioner (http or https). */
    url: z.url({ protocol: /^https?$/, error: 'the provisioner url must be an http(s) URL' }),
    /** Bearer token sent on every call. Write-only: the API never returns it. */
    token: z.string().min(1).optional(),
    /** Name of an environment variable of the server that holds the bearer token. */
    tokenEnv: z
      .string()
      .regex(/^[A-Za-z_][A-Za-z0-9_]*$/, 'tokenEnv names an environment variable')
      .optional(),
    /** Prefix of our request ids: blueprints of different installations sharing a provisioner must differ. */
    namespace: z
      .string()
      .regex(/^[a-z0-9][a-z0-9-]{0,39}$/, 'a namespace is lower-case letters, digits and dashes')
      .default('drydock'),
    /** Deadline of every single call. */
    callTimeoutMs: z.number().int().min(50).max(120_000).default(10_000),
    /** First look at a pending box after this long; later looks back off up to maxPollIntervalMs. */
    pollIntervalMs: z.number().int().min(10).max(600_000).default(2_000),
    maxPollIntervalMs: z.number().int().min(10).max(3_600_000).default(30_000),
    /** Fixed settings sent with every allocate (an image, a region). */
    parameters: z.record(z.string(), z.unknown()).default({}),
    /**
     * Capacity is unknown until a box is open: allocate only while no box of this blueprint is
     * pending, never lease a pending box, and match leases against what an open box turned out to be.
     */
    mysteryBox: z.boolean().default(false),
    /** 1: a box serves one lease at a time (a slot lock); more: shared up to this many leases. */
    maxLeasesPerResource: z.number().int().min(1).max(10_000).default(1),
    /** A lease breaks instead of asking for another box once this many were built for it. */
    maxResourcesPerLease: z.number().int().min(1).max(100).default(5),
    /** A lease breaks once this many boxes built for it broke (a provisioner that fails will fail again). */
    maxFailuresPerLease: z.number().int().min(1).max(100).default(1),
    /** How often boxes that no live resource row knows are looked for and destroyed. */
    leakSweepIntervalMs: z.number().int().min(100).max(86_400_000).default(300_000),
    /** A box younger than this is never swept: its resource row may be about to know it. */
    leakGraceMs: z.number().int().min(0).max(86_400_000).default(60_000),
  })
  .refine((c) => c.maxPollIntervalMs >= c.pollIntervalMs, {
    path: ['maxPollIntervalMs'],
    message: 'maxPollIntervalMs must be at least pollIntervalMs',
  })
  .refine((c) => c.token === undefined || c.tokenEnv === undefined, {
    path: ['tokenEnv'],
    message: 'give token or tokenEnv, not both',
  });

export type ExternalConfig = z.infer<typeof externalConfig>;

/** The token to send now (tokenEnv is read per call, so that rotating it needs no blueprint edit). */
export function tokenOf(config: ExternalConfig): string | undefined {
  return config.token ?? (config.tokenEnv ? process.env[config.tokenEnv] : undefined);
}

/** What a lease may ask of a box: flat values, matched as in ./matching.ts. */
export const externalLeaseAttributes = z.record(
  z.string(),
  z.union([z.string(), z.number(), z.boolean()], {
    error: 'an attribute is a string, a number (a minimum) or a boolean',
  }),
);
