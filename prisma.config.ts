import { defineConfig } from 'prisma/config';

// No datasource URL here: Prisma 7's `env()` throws when a variable is missing, and `generate`
// needs none. Migrations run through src/db/migrate.ts, which picks the database itself.
export default defineConfig({
  schema: 'prisma/schema.prisma',
  migrations: { path: 'prisma/migrations' },
});
