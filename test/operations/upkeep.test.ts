import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { serve, type App } from '../../src/app.js';
import { loadConfig } from '../../src/config.js';
import { autovacuumOffWarning, upkeepRound } from '../../src/db/upkeep.js';
import { createLogger } from '../../src/logger.js';
import { createTestDatabase, describePostgres, type TestDatabase } from '../support/database.js';
import { waitFor } from '../support/wait.js';

// A server setting, not one a session can change: the test checks the branch the PostgreSQL it
// runs on is in (CI's has autovacuum off, so there the warning is what is checked).
describePostgres('start-up on a PostgreSQL without autovacuum', () => {
  let db: TestDatabase;
  let app: App;
  const lines: { level: string; msg: string }[] = [];
  beforeAll(async () => {
    db = await createTestDatabase('postgresql');
    const logger = createLogger('info', {
      write: (line) => lines.push(JSON.parse(line) as { level: string; msg: string }),
      format: 'json',
    });
    app = await serve(db, { ...loadConfig({}), port: 0, shutdownTimeoutMs: 2_000 }, logger);
  });
  afterAll(async () => {
    await app.close();
    await db.dispose();
  });

  it('warns, at start-up, exactly when the server runs no autovacuum, and says it keeps the tables itself', async () => {
    const [row] = await db.prisma.$queryRaw<{ autovacuum: string }[]>`SHOW autovacuum`;
    const warned = lines.filter((line) => line.msg === autovacuumOffWarning(true));
    expect(warned.length).toBe(row!.autovacuum === 'off' ? 1 : 0);
    for (const line of warned) expect(line.level).toBe('warn');
  });
});

type TableStats = { dead: number; modified: number; analyzed: number; vacuumed: number };

describePostgres('upkeep rounds', () => {
  let db: TestDatabase;
  const sql = <T = unknown>(text: string, params?: unknown[]) =>
    db.withConnection(async (query) => {
      const rows = await query(text, params);
      // What this session changed reaches pg_stat_user_tables when it goes idle, not a second later.
      await query('SELECT pg_stat_force_next_flush()');
      return rows as T[];
    });
  const stats = async (): Promise<TableStats> => {
    const [row] = await sql<TableStats>(
      `SELECT n_dead_tup::int AS dead, n_mod_since_analyze::int AS modified,
              (analyze_count + autoanalyze_count)::int AS analyzed, (vacuum_count + autovacuum_count)::int AS vacuumed
         FROM pg_stat_user_tables WHERE schemaname = current_schema() AND relname = 'upkeep_probe'`,
    );
    return row!;
  };
  const probe = 'public.upkeep_probe';

  beforeAll(async () => {
    db = await createTestDatabase('postgresql');
    await sql('CREATE TABLE upkeep_probe (id int PRIMARY KEY)');
  });
  afterAll(async () => {
    await db.dispose();
  });

  it('analyzes a table whose rows changed past 50 + 10 %, vacuums one with dead rows past 50 + 20 %, and leaves one below both alone', async () => {
    await sql('INSERT INTO upkeep_probe SELECT generate_series(1, 1000)');
    await waitFor(async () => (await stats()).modified >= 1_000);
    const analyzed = await upkeepRound(db);
    expect(analyzed.filter((a) => a.table === probe)).toEqual([
      { table: probe, command: 'ANALYZE', changed: 1_000, rows: 0 },
    ]);
    await waitFor(async () => (await stats()).analyzed === 1);

    // 100 changed rows of 1,000: below 50 + 10 %; nothing to do.
    await sql('UPDATE upkeep_probe SET id = id + 100000 WHERE id <= 100');
    await waitFor(async () => (await stats()).modified >= 100);
    expect((await upkeepRound(db)).filter((a) => a.table === probe)).toEqual([]);

    // 400 more dead row versions (500 in all) of 1,000: past 50 + 20 %.
    await sql('DELETE FROM upkeep_probe WHERE id BETWEEN 101 AND 500');
    await waitFor(async () => (await stats()).dead >= 500);
    const vacuumed = await upkeepRound(db);
    expect(vacuumed.filter((a) => a.table === probe)).toEqual([
      { table: probe, command: 'VACUUM', changed: 500, rows: 1_000 },
    ]);
    const after = await waitFor(async () => {
      const s = await stats();
      return s.vacuumed === 1 && s.analyzed === 2 && s;
    });
    expect(after.dead).toBe(0);
  });

  it('skips a round while another process holds the upkeep lock', async () => {
    await sql('INSERT INTO upkeep_probe SELECT generate_series(200001, 202000)');
    await waitFor(async () => (await stats()).modified >= 2_000);
    let release!: () => void;
    const held = new Promise<void>((resolve) => (release = resolve));
    let locked!: () => void;
    const lockTaken = new Promise<void>((resolve) => (locked = resolve));
    const holder = db.withConnection(async (query) => {
      await query('SELECT pg_advisory_lock(7263514003)');
      locked();
      await held;
      await query('SELECT pg_advisory_unlock(7263514003)');
    });
    await lockTaken;
    expect(await upkeepRound(db)).toEqual([]);
    release();
    await holder;
    expect((await upkeepRound(db)).filter((a) => a.table === probe).map((a) => a.command)).toEqual(['ANALYZE']);
  });
});

describe('the start-up warning', () => {
  it('says what the process does about it, or what the operator must do', () => {
    expect(autovacuumOffWarning(true)).toMatch(/vacuums and analyzes its own tables/);
    expect(autovacuumOffWarning(false)).toMatch(/run VACUUM ANALYZE regularly/);
  });
});
