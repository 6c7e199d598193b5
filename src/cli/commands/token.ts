import {
  CliCreateApiTokenDocument,
  CliRevokeApiTokenDocument,
  CliViewerDocument,
  type TokenScope,
} from '../../generated/graphql/graphql.js';
import { idArguments } from '../args.js';
import { execute } from '../client/http.js';
import { globalId } from '../client/ids.js';
import { payloadOf } from '../client/payload.js';
import { UsageError } from '../errors.js';
import { parseWhen } from '../input/when.js';
import { tokenTable } from '../output/format.js';
import { forEachId } from './batch.js';
import { defineCommand } from './command.js';
import { defineGroup } from './group.js';

const SCOPES: Record<string, TokenScope> = { read: 'READ', lease: 'LEASE', admin: 'ADMIN' };

function parseScopes(values: string[]): TokenScope[] {
  return values
    .flatMap((value) => value.split(','))
    .map((name) => {
      const scope = SCOPES[name.trim().toLowerCase()];
      if (!scope) throw new UsageError(`--scope must be read, lease or admin, not "${name}"`);
      return scope;
    });
}

const create = defineCommand({
  name: 'create',
  summary: 'create an API token (printed once)',
  help: `
Usage: drydock token create --name NAME [--scope SCOPE]... [--principal NAME] [--admin] [--expires WHEN]

Prints the secret on stdout, once: store it now (e.g. export DRYDOCK_TOKEN=...).

Flags:
  --name NAME        what the token is for, e.g. ci-runner-3
  --scope SCOPE      read (see), lease (also request, release, run commands on your leases)
                     or admin (everything your principal may); repeat or comma-separate;
                     default read,lease. Never more than the token you create it with.
  --principal NAME   admins: whose token (a new principal is created); default yours
  --admin            admins: make the new principal an admin
  --expires WHEN     a duration from now (30d; at most 24855d) or a time (ISO-8601)`,
  options: {
    name: { type: 'string' },
    scope: { type: 'string', multiple: true },
    principal: { type: 'string' },
    admin: { type: 'boolean' },
    expires: { type: 'string' },
  },
  positionals: false,
  async run({ values }, context) {
    if (!values.name) throw new UsageError('--name is required, e.g. --name ci-runner-3');
    let expiresAt: string | undefined;
    if (values.expires !== undefined) {
      const when = parseWhen('--expires', values.expires);
      expiresAt = 'until' in when ? when.until : new Date(Date.now() + when.ttlSeconds * 1000).toISOString();
    }
    const { createApiToken } = await execute(context.connection, CliCreateApiTokenDocument, {
      input: {
        name: values.name,
        ...(values.principal ? { principalName: values.principal } : {}),
        ...(values.admin ? { isAdmin: true } : {}),
        ...(expiresAt ? { expiresAt } : {}),
        ...(values.scope ? { scopes: parseScopes(values.scope) } : {}),
      },
    });
    const { token, apiToken } = payloadOf(createApiToken, 'CreateApiTokenPayload');
    if (context.json) {
      context.printJson({ token, apiToken });
    } else {
      context.print(token);
      context.note(
        `token ${apiToken.databaseId} "${apiToken.name}" for ${apiToken.principal.name}: shown this once, store it now`,
      );
    }
    return 0;
  },
});

const list = defineCommand({
  name: 'list',
  summary: 'list your tokens (or, for admins, yours)',
  help: `
Usage: drydock token list`,
  options: {},
  positionals: false,
  async run(_parsed, context) {
    const { viewer } = await execute(context.connection, CliViewerDocument, {});
    if (context.json) context.printJson(viewer.tokens);
    else {
      const scopes = viewer.tokenScopes ? `, token scopes ${viewer.tokenScopes.join(',').toLowerCase()}` : '';
      context.note(`signed in as ${viewer.name}${viewer.isAdmin ? ' (admin)' : ''}${scopes}`);
      if (viewer.tokens.length === 0) context.note('no tokens');
      else context.print(tokenTable(viewer.tokens));
    }
    return 0;
  },
});

const revoke = defineCommand({
  name: 'revoke',
  summary: 'revoke tokens (they stop working at once)',
  help: `
Usage: drydock token revoke --id ID...`,
  options: { id: { type: 'string', multiple: true } },
  async run({ values, positionals }, context) {
    return forEachId(
      context,
      idArguments(values.id, positionals).map((id) => globalId('ApiToken', id)),
      'token',
      async (id) => {
        const { revokeApiToken } = await execute(context.connection, CliRevokeApiTokenDocument, { id });
        return payloadOf(revokeApiToken, 'RevokeApiTokenPayload').apiToken;
      },
      (token) => `token ${token.databaseId} "${token.name}" revoked`,
    );
  },
});

export const tokenCommand = defineGroup('token', 'create, list or revoke API tokens', [create, list, revoke]);
