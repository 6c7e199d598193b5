import { z } from 'zod';

// The `external` blueprint's config. Timings are bounded so that a typo cannot turn a poll into a
// busy loop or a sweep into a once-a-year event.

/**
 * tokenEnv may only name variables with this prefix: a blueprint editor chooses both the variable
 * and the URL it is sent to, so without it any variable of the server (DATABASE_URL) could be sent
 * anywhere. An operator opts a variable in by naming it so.
 */
export const TOKEN_ENV_PREFIX = 'DRYDOCK_TOKEN_';

function hasNoCredentials(url: string): boolean {
  try {
    const parsed = new URL(url);
    return parsed.username === '' && parsed.password === '';
  } catch {
    return true; // not a URL at all: z.url says so
  }
}

export const externalConfig = z
  .strictObject({
    /** Base URL of the provisioner (http or https). */
    url: z
      .url({ protocol: /^https?$/, error: 'the provisioner url must be an http(s) URL' })
      // fetch refuses such a URL on every call; and the url is not a secret (Blueprint.config shows it).
      .refine(hasNoCredentials, {
        error: 'the provisioner url must not include a user name or password: put credentials in token or tokenEnv',
      }),
    /** Bearer token sent on every call. Write-only: the API never returns it. */
    token: z.string().min(1).optional(),
    /** Name of an environment variable of the server that holds the bearer token. */
    tokenEnv: z
      .string()
      .regex(
        new RegExp(`^${TOKEN_ENV_PREFIX}[A-Za-z0-9_]+$`),
        `tokenEnv must name an environment variable whose name starts with ${TOKEN_ENV_PREFIX}, then letters, digits or underscores (e.g. ${TOKEN_ENV_PREFIX}PROVISIONER)`,
      )
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
  if (config.token !== undefined) return config.token;
  // The schema already refuses other names; this keeps a config that skipped it from reading any variable.
  return config.tokenEnv?.startsWith(TOKEN_ENV_PREFIX) ? process.env[config.tokenEnv] : undefined;
}

/** What a lease may ask of a box: flat values, matched as in ./matching.ts. */
export const externalLeaseAttributes = z.record(
  z.string(),
  z.union([z.string(), z.number(), z.boolean()], {
    error: 'an attribute is a string, a number (a minimum) or a boolean',
  }),
);
