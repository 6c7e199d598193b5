import { expect } from 'vitest';
import type { App } from '../../src/app.js';
import { graphqlRequest } from '../support/http.js';

/**
 * Creates the blueprint "hosts": one host, h1, reached by the local transport, so that `drydock
 * run` runs its command on this machine (the server must allow the local transport).
 */
export async function createLocalHosts(app: App): Promise<void> {
  const config = {
    services: [
      { name: 'build', bindings: [{ name: 'h1', address: '10.0.0.1', port: 22, transport: { kind: 'local' } }] },
    ],
  };
  const { body } = await graphqlRequest(
    app.graphqlUrl,
    'mutation ($config: JSON!) { createBlueprint(input: { name: "hosts", implementation: "host-pool", config: $config }) { __typename } }',
    { config },
  );
  expect(body).toEqual({ data: { createBlueprint: { __typename: 'BlueprintPayload' } } });
}
