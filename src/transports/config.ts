import { z } from 'zod';

// The `transport` of a host-pool binding. Secrets never live here: ssh names a stored credential.

export const sshTransportConfig = z.strictObject({
  kind: z.literal('ssh'),
  user: z.string().min(1, 'ssh needs a user'),
  /** Name of a stored credential (an SSH private key). */
  credential: z.string().min(1, 'ssh needs a credential name'),
  connectTimeoutSeconds: z.number().int().min(1).max(300).default(10),
});

export const localTransportConfig = z.strictObject({ kind: z.literal('local') });

export const transportConfig = z.discriminatedUnion('kind', [sshTransportConfig, localTransportConfig]);

export type TransportConfig = z.infer<typeof transportConfig>;
