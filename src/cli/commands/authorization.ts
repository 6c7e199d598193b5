import {
  CliAuthorizationsDocument,
  CliBlueprintDocument,
  CliRequestAuthorizationDocument,
  CliSetAuthorizationDocument,
  type AuthorizationState,
  type CliAuthorizationFragment,
} from '../../generated/graphql/graphql.js';
import { idArguments } from '../args.js';
import { execute } from '../client/http.js';
import { globalId } from '../client/ids.js';
import { collectPages } from '../client/pages.js';
import { payloadOf } from '../client/payload.js';
import { CliError, UsageError } from '../errors.js';
import { authorizationTable } from '../output/format.js';
import { forEachId } from './batch.js';
import { defineCommand, type Command } from './command.js';
import { defineGroup } from './group.js';

const STATES: readonly AuthorizationState[] = ['REQUESTED', 'AUTHORIZED', 'DECLINED'];

function describe(a: CliAuthorizationFragment): string {
  return `authorization ${a.databaseId}: ${a.principal.name} on blueprint ${a.blueprint.databaseId} (${a.blueprint.name}) is ${a.state}`;
}

const list = defineCommand({
  name: 'list',
  summary: 'list authorization requests and decisions',
  help: `
Usage: drydock authorization list [--blueprint ID] [--state REQUESTED|AUTHORIZED|DECLINED]`,
  options: { blueprint: { type: 'string' }, state: { type: 'string' } },
  positionals: false,
  async run({ values }, context) {
    const state = values.state?.toUpperCase() as AuthorizationState | undefined;
    if (state && !STATES.includes(state))
      throw new UsageError(`--state must be one of ${STATES.join(', ')}, not "${values.state}"`);
    const authorizations = await collectPages(
      async (first, after) =>
        (
          await execute(context.connection, CliAuthorizationsDocument, {
            blueprintId: values.blueprint ? globalId('Blueprint', values.blueprint) : null,
            state: state ?? null,
            first,
            after,
          })
        ).authorizations,
    );
    if (context.json) context.printJson(authorizations);
    else if (authorizations.length === 0) context.note('no authorizations');
    else context.print(authorizationTable(authorizations));
    return 0;
  },
});

const request = defineCommand({
  name: 'request',
  summary: 'ask to lease from a blueprint',
  help: `
Usage: drydock authorization request --blueprint ID [--for-blueprint ID]

  --blueprint ID       the blueprint to lease from
  --for-blueprint ID   ask for that blueprint's principal instead of for yourself (administrators):
                       a working-copy blueprint leases its hosts as its own principal`,
  options: { blueprint: { type: 'string' }, 'for-blueprint': { type: 'string' } },
  positionals: false,
  async run({ values }, context) {
    if (!values.blueprint) throw new UsageError('--blueprint ID is required');
    const forBlueprint = values['for-blueprint'];
    let principalId: string | null = null;
    if (forBlueprint) {
      const { blueprint } = await execute(context.connection, CliBlueprintDocument, {
        id: globalId('Blueprint', forBlueprint),
      });
      if (!blueprint?.principal) throw new CliError(`blueprint ${forBlueprint} not found`);
      principalId = blueprint.principal.id;
    }
    const { requestBlueprintAuthorization } = await execute(context.connection, CliRequestAuthorizationDocument, {
      blueprintId: globalId('Blueprint', values.blueprint),
      principalId,
    });
    const { authorization } = payloadOf(requestBlueprintAuthorization, 'AuthorizationPayload');
    if (context.json) context.printJson(authorization);
    else context.print(describe(authorization));
    return 0;
  },
});

function decide(name: 'authorize' | 'decline'): Command {
  return defineCommand({
    name,
    summary:
      name === 'authorize' ? 'authorize requests (blueprint editors)' : 'decline requests (existing leases go on)',
    help: `
Usage: drydock authorization ${name} --id ID...`,
    options: { id: { type: 'string', multiple: true } },
    async run({ values, positionals }, context) {
      return forEachId(
        context,
        idArguments(values.id, positionals).map((id) => globalId('Authorization', id)),
        'authorization',
        async (id) => {
          const { setBlueprintAuthorization } = await execute(context.connection, CliSetAuthorizationDocument, {
            id,
            state: name === 'authorize' ? 'AUTHORIZED' : 'DECLINED',
          });
          return payloadOf(setBlueprintAuthorization, 'AuthorizationPayload').authorization;
        },
        describe,
      );
    },
  });
}

export const authorizationCommand = defineGroup(
  'authorization',
  'list, request, authorize or decline blueprint authorizations',
  [list, request, decide('authorize'), decide('decline')],
);
