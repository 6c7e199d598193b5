import {
  CliBlueprintDocument,
  CliBlueprintsDocument,
  CliCreateBlueprintDocument,
  CliSetBlueprintDisabledDocument,
  CliUpdateBlueprintDocument,
  type CliBlueprintFragment,
} from '../../generated/graphql/graphql.js';
import { idArguments, RANGES, wholeNumber } from '../args.js';
import { execute } from '../client/http.js';
import { globalId } from '../client/ids.js';
import { collectPages } from '../client/pages.js';
import { payloadOf } from '../client/payload.js';
import { CliError, UsageError } from '../errors.js';
import { readJsonObject } from '../input/json-file.js';
import { authorizationTable, blueprintTable } from '../output/format.js';
import { forEachId } from './batch.js';
import { defineCommand, type Command } from './command.js';
import { defineGroup } from './group.js';

/** The warm-pool flags shared by create and warm; the server validates their values against the blueprint. */
async function warmInput(
  values: { 'min-ready'?: string | undefined; 'warm-attributes'?: string | undefined },
  stdin: NodeJS.ReadableStream,
): Promise<{ minReady?: number; warmAttributes?: Record<string, unknown> }> {
  if (values['warm-attributes'] !== undefined && values['min-ready'] === undefined)
    throw new UsageError('--warm-attributes describes a warm pool: give --min-ready too');
  return {
    ...(values['min-ready'] !== undefined
      ? { minReady: wholeNumber('--min-ready', values['min-ready'], RANGES.minReady) }
      : {}),
    ...(values['warm-attributes'] !== undefined
      ? { warmAttributes: await readJsonObject('--warm-attributes', values['warm-attributes'], stdin) }
      : {}),
  };
}

function describe(blueprint: CliBlueprintFragment): string {
  return `blueprint ${blueprint.databaseId} "${blueprint.name}" (${blueprint.implementation}, ${blueprint.resourceType}) ${blueprint.disabled ? 'disabled' : 'enabled'}`;
}

const create = defineCommand({
  name: 'create',
  summary: 'create a blueprint (admins)',
  help: `
Usage: drydock blueprint create --name NAME --implementation IMPL --config FILE|- [--type TYPE] [--limit N]
                               [--min-ready N [--warm-attributes FILE|-]]

Flags:
  --name NAME             a name people recognise
  --implementation IMPL   e.g. host-pool
  --config FILE|-         the implementation's configuration as JSON, from a file or stdin
  --type TYPE             resource type it yields (default: the implementation's)
  --limit N               concurrent-resource limit, 1 to 10000 (default: none)
  --min-ready N           idle resources kept ready, a warm pool, 0 to 10000 (default: 0, none)
  --warm-attributes FILE|-  the lease attributes the warm pool's resources are built for, as JSON

Example:
  echo '{"services":[{"name":"build","bindings":[{"name":"h1","address":"10.0.0.1","port":22}]}]}' |
    drydock blueprint create --name build-hosts --implementation host-pool --config -`,
  options: {
    name: { type: 'string' },
    implementation: { type: 'string' },
    config: { type: 'string' },
    type: { type: 'string', short: 't' },
    limit: { type: 'string' },
    'min-ready': { type: 'string' },
    'warm-attributes': { type: 'string' },
  },
  positionals: false,
  async run({ values }, context) {
    if (!values.name) throw new UsageError('--name is required');
    if (!values.implementation) throw new UsageError('--implementation is required, e.g. host-pool');
    if (!values.config) throw new UsageError('--config FILE (or - for stdin) is required');
    if (values.config === '-' && values['warm-attributes'] === '-')
      throw new UsageError('only one of --config and --warm-attributes can be read from stdin');
    const { createBlueprint } = await execute(context.connection, CliCreateBlueprintDocument, {
      input: {
        name: values.name,
        implementation: values.implementation,
        config: await readJsonObject('--config', values.config, context.io.stdin),
        ...(values.type ? { resourceType: values.type } : {}),
        ...(values.limit !== undefined
          ? { resourceLimit: wholeNumber('--limit', values.limit, RANGES.resourceLimit) }
          : {}),
        ...(await warmInput(values, context.io.stdin)),
      },
    });
    const { blueprint } = payloadOf(createBlueprint, 'BlueprintPayload');
    if (context.json) context.printJson(blueprint);
    else context.print(`created ${describe(blueprint)}`);
    return 0;
  },
});

const list = defineCommand({
  name: 'list',
  summary: 'list blueprints',
  help: `
Usage: drydock blueprint list [--type TYPE] [--disabled | --enabled]

Flags:
  --type TYPE   only blueprints yielding this resource type
  --disabled    only disabled ones
  --enabled     only enabled ones`,
  options: { type: { type: 'string', short: 't' }, disabled: { type: 'boolean' }, enabled: { type: 'boolean' } },
  positionals: false,
  async run({ values }, context) {
    if (values.disabled && values.enabled) throw new UsageError('give --disabled or --enabled, not both');
    const disabled = values.disabled ? true : values.enabled ? false : null;
    const blueprints = await collectPages(
      async (first, after) =>
        (
          await execute(context.connection, CliBlueprintsDocument, {
            resourceType: values.type ?? null,
            disabled,
            first,
            after,
          })
        ).blueprints,
    );
    if (context.json) context.printJson(blueprints);
    else if (blueprints.length === 0) context.note('no blueprints');
    else context.print(blueprintTable(blueprints));
    return 0;
  },
});

const show = defineCommand({
  name: 'show',
  summary: 'show a blueprint with its configuration and authorizations',
  help: `
Usage: drydock blueprint show --id ID`,
  options: { id: { type: 'string' } },
  async run({ values, positionals }, context) {
    const [id, extra] = idArguments(values.id, positionals);
    if (!id || extra) throw new UsageError('give exactly one blueprint id: drydock blueprint show --id ID');
    const { blueprint } = await execute(context.connection, CliBlueprintDocument, { id: globalId('Blueprint', id) });
    if (!blueprint) throw new CliError(`blueprint ${id} not found`);
    if (context.json) {
      context.printJson(blueprint);
      return 0;
    }
    context.print(describe(blueprint));
    context.print(`  resource limit  ${blueprint.resourceLimit ?? 'none'}`);
    context.print(`  min ready       ${blueprint.minReady}`);
    if (blueprint.minReady > 0 && blueprint.warmAttributes)
      context.print(`  warm attributes ${JSON.stringify(blueprint.warmAttributes)}`);
    // What operators authorize when this blueprint leases from others (a working copy's host).
    if (blueprint.principal)
      context.print(`  principal       ${blueprint.principal.name} (principal ${blueprint.principal.databaseId})`);
    context.print(`  created         ${blueprint.createdAt}`);
    context.print(`  config\n${JSON.stringify(blueprint.config, null, 2).replace(/^/gm, '    ')}`);
    if (blueprint.authorizations.length > 0) context.print(`\n${authorizationTable(blueprint.authorizations)}`);
    return 0;
  },
});

const warm = defineCommand({
  name: 'warm',
  summary: "set a blueprint's warm pool: idle resources kept ready (admins)",
  help: `
Usage: drydock blueprint warm --id ID --min-ready N [--warm-attributes FILE|-]

Keeps N idle ACTIVE resources of the blueprint ready (within its resource limit), so a lease on it is
granted without waiting for activation; --min-ready 0 builds no more (ready ones stay until reclaimed).

Flags:
  --id ID                   blueprint id
  --min-ready N             idle resources to keep ready, 0 to 10000
  --warm-attributes FILE|-  the lease attributes they are built for, as JSON (e.g. a working copy's repositories)`,
  options: { id: { type: 'string' }, 'min-ready': { type: 'string' }, 'warm-attributes': { type: 'string' } },
  async run({ values, positionals }, context) {
    const [id, extra] = idArguments(values.id, positionals);
    if (!id || extra)
      throw new UsageError('give exactly one blueprint id: drydock blueprint warm --id ID --min-ready N');
    if (values['min-ready'] === undefined) throw new UsageError('--min-ready N is required');
    const { updateBlueprint } = await execute(context.connection, CliUpdateBlueprintDocument, {
      id: globalId('Blueprint', id),
      input: await warmInput(values, context.io.stdin),
    });
    const { blueprint } = payloadOf(updateBlueprint, 'BlueprintPayload');
    if (context.json) context.printJson(blueprint);
    else context.print(`${describe(blueprint)}: keeps ${blueprint.minReady} ready`);
    return 0;
  },
});

function toggle(name: 'disable' | 'enable'): Command {
  return defineCommand({
    name,
    summary:
      name === 'disable' ? 'stop a blueprint allocating (its resources go on)' : 'let a blueprint allocate again',
    help: `
Usage: drydock blueprint ${name} --id ID...`,
    options: { id: { type: 'string', multiple: true } },
    async run({ values, positionals }, context) {
      return forEachId(
        context,
        idArguments(values.id, positionals).map((id) => globalId('Blueprint', id)),
        'blueprint',
        async (id) => {
          const { setBlueprintDisabled } = await execute(context.connection, CliSetBlueprintDisabledDocument, {
            id,
            disabled: name === 'disable',
          });
          return payloadOf(setBlueprintDisabled, 'BlueprintPayload').blueprint;
        },
        describe,
      );
    },
  });
}

export const blueprintCommand = defineGroup('blueprint', 'create, list, show, warm, disable or enable blueprints', [
  create,
  list,
  show,
  warm,
  toggle('disable'),
  toggle('enable'),
]);
