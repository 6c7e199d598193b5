// Writes schema.graphql from the Pothos schema; `--check` fails instead when the committed file is stale.
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { printSchema } from 'graphql';
import { projectRoot } from '../src/db/migrations-folder.js';
import { printableSchema } from '../src/schema/index.js';

const file = join(projectRoot, 'schema.graphql');
const printed = printSchema(printableSchema()) + '\n';
if (process.argv.includes('--check')) {
  const committed = await readFile(file, 'utf8').catch(() => '');
  if (committed !== printed) {
    console.error('schema.graphql is stale: run `npm run schema:print` and commit the result.');
    process.exit(1);
  }
  console.log('schema.graphql is up to date');
} else {
  await writeFile(file, printed);
  console.log(`wrote ${file}`);
}
