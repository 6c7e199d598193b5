import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { execute } from '../../src/cli/client/http.js';
import { CliError } from '../../src/cli/errors.js';
import { TypedDocumentString } from '../../src/generated/graphql/graphql.js';

// The command line's client against a server that sheds load: a refusal answered before anything
// ran (503 OVERLOADED, 429 TOO_MANY_IN_FLIGHT, with Retry-After) is sent again after the time it
// asks for; any other error is not.

const viewer = new TypedDocumentString<{ viewer: { id: string } }, Record<string, never>>('query { viewer { id } }');

/** A GraphQL endpoint that answers each request with the next of `answers` (the last repeats). */
async function scripted(answers: { status: number; code?: string; retryAfter?: string }[]) {
  const seen: number[] = [];
  const server: Server = createServer((req, res) => {
    req.resume();
    req.on('end', () => {
      const answer = answers[Math.min(seen.length, answers.length - 1)]!;
      seen.push(Date.now());
      res.writeHead(answer.status, {
        'content-type': 'application/json',
        ...(answer.retryAfter ? { 'retry-after': answer.retryAfter } : {}),
      });
      res.end(
        JSON.stringify(
          answer.code
            ? { errors: [{ message: `refused: ${answer.code}`, extensions: { code: answer.code } }] }
            : { data: { viewer: { id: 'p1' } } },
        ),
      );
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return { url, seen, close: () => new Promise<void>((resolve) => server.close(() => resolve())) };
}

describe('the command line client and load shedding', () => {
  let close: (() => Promise<void>) | undefined;
  afterEach(async () => {
    await close?.();
    close = undefined;
  });

  it('waits as Retry-After asks and sends again after 503 OVERLOADED and 429 TOO_MANY_IN_FLIGHT', async () => {
    const server = await scripted([
      { status: 503, code: 'OVERLOADED', retryAfter: '1' },
      { status: 429, code: 'TOO_MANY_IN_FLIGHT', retryAfter: '0' },
      { status: 200 },
    ]);
    close = server.close;
    const result = await execute({ server: server.url, token: undefined }, viewer);
    expect(result).toEqual({ viewer: { id: 'p1' } });
    expect(server.seen).toHaveLength(3);
    // The first refusal asked for a second; a timer may fire a little early.
    expect(server.seen[1]! - server.seen[0]!).toBeGreaterThanOrEqual(950);
  });

  it('does not send again after a refusal of another kind (the rate limit)', async () => {
    const server = await scripted([{ status: 429, code: 'RATE_LIMITED', retryAfter: '0' }, { status: 200 }]);
    close = server.close;
    const error = await execute({ server: server.url, token: undefined }, viewer).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(CliError);
    expect((error as CliError).message).toContain('RATE_LIMITED');
    expect(server.seen).toHaveLength(1);
  });
});
