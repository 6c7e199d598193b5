import { createRequire } from 'node:module';
import { relative } from 'node:path';
import { defineConfig } from 'vitest/config';
import { BaseSequencer, type TestSpecification } from 'vitest/node';

const require = createRequire(import.meta.url);

// Files that take minutes start first. Without timings from an earlier run (a fresh clone, as in
// CI) vitest starts the largest files first, and these are small: one started last ran alone on
// one worker for minutes while the other had nothing left to do.
const LONG_FIRST = ['test/model-check/', 'test/fuzz/', 'test/api-holders.test.ts', 'test/model/'];

class LongFilesFirst extends BaseSequencer {
  override async sort(files: TestSpecification[]): Promise<TestSpecification[]> {
    const rank = (file: TestSpecification) => {
      const path = relative(file.project.config.root, file.moduleId);
      const index = LONG_FIRST.findIndex((prefix) => path.startsWith(prefix));
      return index < 0 ? LONG_FIRST.length : index;
    };
    return (await super.sort(files)).sort((a, b) => rank(a) - rank(b));
  }
}

export default defineConfig({
  resolve: {
    // graphql 16 ships ESM and CJS builds; Node loads the CJS one for every package, so the tests'
    // own imports must too, or schema objects from one realm meet validators from the other.
    alias: [{ find: /^graphql$/, replacement: require.resolve('graphql') }],
  },
  test: {
    include: ['test/**/*.test.ts'],
    globalSetup: ['test/support/build-dist.ts'],
    testTimeout: 60_000,
    hookTimeout: 60_000,
    pool: 'forks',
    // Test files share a worker's modules. With a fresh process and module graph per file, much of
    // CI's test time went between files (starting a process, importing, building the schema again)
    // rather than into them. Sharing is sound because src/ keeps no state in its modules (each
    // server, allocator and database is an object a test creates and disposes) and the tests
    // restore what they change in process.env and in timers.
    isolate: false,
    // Two cores: more workers only make the database-bound tests contend.
    maxWorkers: 2,
    sequence: { sequencer: LongFilesFirst },
  },
});
