import { z } from 'zod';
import { configText, fieldOf } from '../config-fields.js';

// The `transport` of a host-pool binding. Secrets never live here: ssh names a stored credential.

export const sshTransportConfig = z.strictObject({
  kind: z.literal('ssh'),
  user: configText(256, 'the user ssh logs in as'),
  /** Name of a stored credential (an SSH private key); no credential's name is longer. */
  credential: configText(100, 'the name of a stored ssh key'),
  connectTimeoutSeconds: z.number().int().min(1).max(300).default(10),
});

export const localTransportConfig = z.strictObject({ kind: z.literal('local') });

export const transportConfig = z.discriminatedUnion('kind', [sshTransportConfig, localTransportConfig], {
  // An object whose kind is neither is reported at its `kind`; anything else at the transport.
  error: (issue) =>
    typeof issue.input === 'object' && issue.input !== null
      ? `${fieldOf(issue)} must be "ssh" or "local"`
      : `${fieldOf(issue)} must be an object with a "kind" of "ssh" or "local"`,
});

export type TransportConfig = z.infer<typeof transportConfig>;
