import type { Resource } from '../../generated/prisma/client.js';
import { PermanentFailure } from '../../failures.js';
import type { ActivationResult, BlueprintOf, BlueprintRuntime } from '../implementation.js';
import { BOX_KEY, boxAttributes, boxRecord } from './box.js';
import type { ExternalConfig } from './config.js';
import { connect } from './connect.js';
import { shortfall } from './matching.js';
import { requestIdOf } from './protocol.js';

/**
 * The setup step of a box: asks the provisioner for it and reports whether it is open. Allocate is
 * idempotent by request id, so every look is an allocate: the first creates the box, later ones
 * (and a look after a crash) report on the same box, and no id has to be remembered in between.
 */
export async function activateBox(
  blueprint: BlueprintOf<ExternalConfig>,
  resource: Resource,
  runtime: BlueprintRuntime,
): Promise<ActivationResult> {
  const { config } = blueprint;
  const record = boxRecord(resource);
  const requestId = requestIdOf(config.namespace, blueprint.id, resource.id);
  const client = connect(config, runtime.signal);
  const box = await client.allocate({
    requestId,
    resourceType: blueprint.resourceType,
    attributes: record.requested,
    parameters: config.parameters,
  });
  if (box.status === 'failed')
    throw new PermanentFailure(client.redact(`provisioner box ${box.id} failed: ${box.message ?? 'no reason given'}`));
  if (box.status === 'pending')
    return { status: 'wait', retryAfterMs: pollDelayMs(config, resource, box.retryAfterMs) };

  const attributes = boxAttributes(box.attributes);
  // Only a mystery box may turn out smaller than asked: any other provisioner promised to honour
  // the request, and a lease already waits on this box believing it.
  const missing = config.mysteryBox ? null : shortfall(attributes, record.requested);
  if (missing !== null)
    throw new PermanentFailure(
      client.redact(`provisioner box ${box.id} does not satisfy the lease it was built for: ${missing}`),
    );
  await runtime.log(client.redact(`provisioner box ${box.id} is ready`), { providerId: box.id, attributes });
  return { status: 'active', attributes: { ...attributes, [BOX_KEY]: { ...record, providerId: box.id } } };
}

/**
 * How long until the next look at a pending box: the provisioner's hint, or a quarter of the time
 * waited so far, so that looks back off geometrically without any state kept between them.
 */
function pollDelayMs(config: ExternalConfig, resource: Resource, hint: number | undefined): number {
  const wanted = hint ?? Math.round((Date.now() - resource.createdAt.getTime()) / 4);
  return Math.min(config.maxPollIntervalMs, Math.max(config.pollIntervalMs, wanted));
}
