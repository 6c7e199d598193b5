import { afterAll, afterEach, beforeAll, expect, it } from 'vitest';
import { authenticate } from '../../src/auth/authenticate.js';
import { generateToken } from '../../src/auth/tokens.js';
import { createTestDatabase, describeEachDatabase, type TestDatabase } from '../support/database.js';
import { principalWithToken, tokenFor } from '../support/tokens.js';

const MINUTE = 60_000;

describeEachDatabase('authenticate', (kind) => {
  let db: TestDatabase;
  const zone = process.env['TZ'];
  beforeAll(async () => {
    db = await createTestDatabase(kind);
  });
  afterAll(() => db.dispose());
  afterEach(() => {
    if (zone === undefined) delete process.env['TZ'];
    else process.env['TZ'] = zone;
  });

  it("resolves a token to its principal, with the token's scopes", async () => {
    const { principal, token, row } = await principalWithToken(db, 'reader', { scopes: ['READ'] });
    expect(await authenticate(db, token)).toEqual({
      kind: 'token',
      actor: {
        principalId: principal.id,
        name: 'reader',
        principalIsAdmin: false,
        scopes: ['READ'],
        token: { id: row.id, expiresAt: null },
      },
    });
    const admin = await principalWithToken(db, 'root', { isAdmin: true });
    expect(await authenticate(db, admin.token)).toMatchObject({
      kind: 'token',
      actor: { principalId: admin.principal.id, principalIsAdmin: true, scopes: ['ADMIN'] },
    });
  });

  it('rejects an unknown, a revoked and an expired token, each with its reason; no token is anonymous', async () => {
    expect(await authenticate(db, generateToken().token)).toEqual({ kind: 'rejected', reason: 'unknown API token' });
    const revoked = await principalWithToken(db, 'gone', { revoked: true });
    expect(await authenticate(db, revoked.token)).toEqual({ kind: 'rejected', reason: 'this API token was revoked' });
    const expired = await principalWithToken(db, 'late', { expired: true });
    expect(await authenticate(db, expired.token)).toEqual({ kind: 'rejected', reason: 'this API token has expired' });
    expect(await authenticate(db, null)).toEqual({ kind: 'anonymous' });
  });

  it('reads expiry in UTC whatever the process time zone (a token two minutes either side of now)', async () => {
    // Node applies a changed TZ at once; a timestamp read as local time would be hours off here.
    process.env['TZ'] = 'America/New_York';
    const { principal } = await principalWithToken(db, 'zoned');
    const soon = await tokenFor(db, principal, { name: 'soon' });
    const past = await tokenFor(db, principal, { name: 'past' });
    await db.prisma.apiToken.update({
      where: { id: soon.row.id },
      data: { expiresAt: new Date(Date.now() + 2 * MINUTE) },
    });
    await db.prisma.apiToken.update({
      where: { id: past.row.id },
      data: { expiresAt: new Date(Date.now() - 2 * MINUTE) },
    });
    expect((await authenticate(db, soon.token)).kind).toBe('token');
    expect(await authenticate(db, past.token)).toEqual({ kind: 'rejected', reason: 'this API token has expired' });
  });

  it('records when a token was last used, at most once a minute', async () => {
    const { token, row } = await principalWithToken(db, 'auditor');
    const at = new Date(Date.now() - 10 * MINUTE);
    await authenticate(db, token, at);
    const lastUsed = async () => (await db.prisma.apiToken.findUniqueOrThrow({ where: { id: row.id } })).lastUsedAt;
    expect(await lastUsed()).toEqual(at);
    await authenticate(db, token, new Date(at.getTime() + 30_000));
    expect(await lastUsed()).toEqual(at);
    const later = new Date(at.getTime() + 2 * MINUTE);
    await authenticate(db, token, later);
    expect(await lastUsed()).toEqual(later);
  });
});
