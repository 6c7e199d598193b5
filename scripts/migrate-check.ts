// Fails when prisma/schema.prisma and prisma/migrations disagree (run in CI).
// `--migrations DIR` and `--schema FILE` check another copy (the drift test uses them).
import { parseArgs } from 'node:util';
import { diffMigrationsToSchema } from '../src/db/migration-diff.js';

const { values } = parseArgs({ options: { migrations: { type: 'string' }, schema: { type: 'string' } } });
const script = await diffMigrationsToSchema({
  ...(values.migrations ? { dir: values.migrations } : {}),
  ...(values.schema ? { schemaFile: values.schema } : {}),
});
if (script !== '') {
  console.error('schema.prisma has changes that no migration records. Run `npm run migrate:new -- <name>`.');
  console.error('The missing migration would be:\n' + script);
  process.exit(1);
}
console.log('migrations match schema.prisma');
