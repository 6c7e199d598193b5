// Applies pending migrations to the configured database (DATABASE_URL, else PGlite in DATA_DIR).
import { ConfigError, loadConfig } from '../src/config.js';
import { openDatabase } from '../src/db/database.js';
import { applyMigrations } from '../src/db/migrate.js';

try {
  const config = loadConfig();
  const db = await openDatabase({ url: config.databaseUrl, dataDir: config.dataDir, poolSize: 1 });
  try {
    const applied = await applyMigrations(db);
    console.log(`${db.kind} at ${db.location}: ${applied.length > 0 ? `applied ${applied.join(', ')}` : 'up to date'}`);
  } finally {
    await db.close();
  }
} catch (error) {
  console.error(error instanceof ConfigError ? error.message : error);
  process.exit(error instanceof ConfigError ? 2 : 1);
}
