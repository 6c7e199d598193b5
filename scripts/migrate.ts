// Applies pending migrations to the configured database (DATABASE_URL, else PGlite in DATA_DIR).
import { ConfigError, loadConfig } from '../src/config.js';
import { openDatabase, redactUrl } from '../src/db/database.js';
import { applyMigrations } from '../src/db/migrate.js';

let target = 'the database';
try {
  const config = loadConfig();
  target = config.databaseUrl
    ? `PostgreSQL at ${redactUrl(config.databaseUrl)}`
    : `embedded PGlite at ${config.dataDir}`;
  const db = await openDatabase({ url: config.databaseUrl, dataDir: config.dataDir, poolSize: 1 });
  try {
    const applied = await applyMigrations(db);
    console.log(`${db.kind} at ${db.location}: ${applied.length > 0 ? `applied ${applied.join(', ')}` : 'up to date'}`);
  } finally {
    await db.close();
  }
} catch (error) {
  if (error instanceof ConfigError) {
    console.error(error.message);
    process.exit(2);
  }
  // One line an operator can act on (an unreachable server, a refused password, a directory in
  // use), naming the database without its password: not the driver's stack and fields.
  console.error(`could not migrate ${target}: ${error instanceof Error ? error.message : String(error)}`);
  process.exit(1);
}
