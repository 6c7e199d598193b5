import { authorizationCommand } from './authorization.js';
import { blueprintCommand } from './blueprint.js';
import { candidatesCommand } from './candidates.js';
import type { Command } from './command.js';
import { completionCommand } from './completion.js';
import { drainResourceCommand, undrainResourceCommand } from './drain.js';
import { leaseCommand } from './lease.js';
import { leasesCommand, resourcesCommand } from './listings.js';
import { logCommand } from './log.js';
import { queueCommand } from './queue.js';
import { releaseLeaseCommand, releaseResourceCommand } from './release.js';
import { runCommand } from './run-command.js';
import { runOnLeaseCommand } from './run.js';
import { tokenCommand } from './token.js';
import { reclaimCommand, updateLeaseCommand, updateResourceCommand } from './update.js';
import { watchCommand } from './watch.js';

/** In the order `drydock --help` lists them: the everyday ones first. */
export const commands: Command[] = [
  leaseCommand,
  candidatesCommand,
  releaseLeaseCommand,
  runCommand,
  runOnLeaseCommand,
  leasesCommand,
  queueCommand,
  resourcesCommand,
  watchCommand,
  logCommand,
  releaseResourceCommand,
  drainResourceCommand,
  undrainResourceCommand,
  reclaimCommand,
  updateLeaseCommand,
  updateResourceCommand,
  blueprintCommand,
  tokenCommand,
  authorizationCommand,
  completionCommand(() => commands),
];
