import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import type { Browser, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { serve, type App } from '../../src/app.js';
import { loadConfig } from '../../src/config.js';
import { projectRoot } from '../../src/db/migrations-folder.js';
import { createLogger } from '../../src/logger.js';
import { createTestDatabase, type TestDatabase } from '../support/database.js';
import { graphqlRequest } from '../support/http.js';
import { launchChromium } from './browser.js';
import { buildPlayground } from './build.js';

// The built web playground, served by the real server, in real Chromium.

const quiet = createLogger('error', () => {});
const screenshots = join(projectRoot, 'test-results');

describe('web playground in Chromium', () => {
  let db: TestDatabase;
  let app: App;
  let browser: Browser;
  let page: Page;
  const pageErrors: string[] = [];

  beforeAll(async () => {
    await buildPlayground();
    db = await createTestDatabase('pglite');
    app = await serve(db, { ...loadConfig({}), port: 0, shutdownTimeoutMs: 2_000 }, quiet);
    const created = await graphqlRequest(
      app.graphqlUrl,
      `mutation ($input: CreateBlueprintInput!) { createBlueprint(input: $input) { __typename } }`,
      {
        input: {
          name: 'build-hosts',
          implementation: 'host-pool',
          config: { services: [{ name: 'build', bindings: [{ name: 'h1', address: '10.0.0.1', port: 22 }] }] },
        },
      },
    );
    expect(created.body.data).toEqual({ createBlueprint: { __typename: 'BlueprintPayload' } });
    browser = await launchChromium();
    page = await browser.newPage({ viewport: { width: 1280, height: 800 } });
    page.on('pageerror', (error) => pageErrors.push(error.message));
    await mkdir(screenshots, { recursive: true });
  });
  afterAll(async () => {
    await browser?.close();
    await app?.close();
    await db?.dispose();
  });

  it('requests a lease, sees it reach ACTIVE live, releases it and sees it DESTROYED', async () => {
    const served = await fetch(`${app.url}/`);
    expect(
      served.status,
      'the server serves web-playground/dist at / (createStaticHandler in src/server/http.ts)',
    ).toBe(200);
    expect(served.headers.get('content-type')).toMatch(/^text\/html/);
    await page.goto(`${app.url}/`);
    await expect(page.title()).resolves.toBe('Drydock');
    await page.locator('.connection[data-state="connected"]').waitFor();
    await page.getByText('build-hosts').waitFor();
    // A marker on window survives only if the page never reloads.
    await page.evaluate(() => Object.assign(window, { neverReloaded: true }));

    const form = page.getByRole('form', { name: 'Request a lease' });
    await form.getByLabel('Resource type').fill('host');
    await form.getByRole('button', { name: 'Request lease' }).click();

    await page.waitForURL(/#\/leases\/1$/);
    await page.locator('.lease-header [data-status="ACTIVE"]').waitFor();
    await page.locator('.timeline [data-type="lease-activated"]').waitFor();
    await expect(page.locator('[data-attribute="address"]').textContent()).resolves.toBe('10.0.0.1');
    await page.screenshot({ path: join(screenshots, 'web-playground-lease-active.png'), fullPage: true });

    await page.getByRole('button', { name: 'Release' }).click();
    await page.locator('.lease-header [data-status="DESTROYED"]').waitFor();
    await page.locator('.timeline.complete [data-type="lease-destroyed"]').waitFor();
    await page.screenshot({ path: join(screenshots, 'web-playground-lease-destroyed.png'), fullPage: true });

    // The dashboard saw the same lease change through its own subscription.
    await page.getByRole('link', { name: '← All leases' }).click();
    await page.locator('tr[data-lease="1"] [data-status="DESTROYED"]').waitFor();
    await expect(page.evaluate(() => (window as { neverReloaded?: boolean }).neverReloaded)).resolves.toBe(true);
    expect(pageErrors).toEqual([]);
  });

  it('shows why a pending lease waits, on its page and in the list', async () => {
    // One resource at a time: the linux lease holds it, so the mac lease has to wait.
    const bindings = [
      { name: 'lin', address: '10.0.1.1', port: 22, attributes: { platform: 'linux' } },
      { name: 'mac', address: '10.0.1.2', port: 22, attributes: { platform: 'mac' } },
    ];
    const created = await graphqlRequest<{ createBlueprint: { blueprint: { id: string } } }>(
      app.graphqlUrl,
      `mutation ($input: CreateBlueprintInput!) { createBlueprint(input: $input) { ... on BlueprintPayload { blueprint { id } } } }`,
      {
        input: {
          name: 'one-at-a-time',
          implementation: 'host-pool',
          resourceLimit: 1,
          config: { services: [{ name: 'p', bindings }] },
        },
      },
    );
    const blueprintId = created.body.data!.createBlueprint.blueprint.id;
    const holder = await graphqlRequest(
      app.graphqlUrl,
      `mutation ($b: ID!) { requestLease(input: { resourceType: "host", blueprintIds: [$b], attributes: { platform: "linux" } }) { __typename } }`,
      { b: blueprintId },
    );
    expect(holder.body.errors).toBeUndefined();

    await page.goto(`${app.url}/#/`);
    const form = page.getByRole('form', { name: 'Request a lease' });
    await form.getByLabel('Resource type').fill('host');
    await form.getByLabel('Wanted attributes').fill('{"platform": "mac"}');
    await form.getByRole('button', { name: 'Request lease' }).click();
    await page.waitForURL(/#\/leases\/\d+$/);
    const blocker = page.getByRole('complementary', { name: 'Why am I waiting?' });
    await blocker.waitFor();
    await expect(blocker.textContent()).resolves.toMatch(/waiting for resources|busy|capacity/i);
    await expect(page.locator('.lease-header [data-status]').getAttribute('data-status')).resolves.toBe('PENDING');
    await page.screenshot({ path: join(screenshots, 'web-playground-lease-waiting.png'), fullPage: true });

    const id = /#\/leases\/(\d+)$/.exec(page.url())![1]!;
    await page.getByRole('link', { name: '← All leases' }).click();
    await expect(page.locator(`tr[data-lease="${id}"] td.waiting`).textContent()).resolves.not.toBe('');
    // The queue of its type shows it first, with why it waits.
    const queued = page
      .getByRole('region', { name: 'Queue' })
      .locator(`.queue[data-type="host"] li[data-lease="${id}"]`);
    await expect(queued.getAttribute('data-position')).resolves.toBe('1');
    await expect(queued.textContent()).resolves.toMatch(/priority 0/);

    await page.locator(`tr[data-lease="${id}"] a`).click();
    await page.getByRole('button', { name: 'Release' }).click();
    await page.locator('.lease-header [data-status="DESTROYED"]').waitFor();
    expect(pageErrors).toEqual([]);
  });
});
