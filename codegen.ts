import type { CodegenConfig } from '@graphql-codegen/cli';

// The typed client comes from the committed schema.graphql, so generating it needs no running
// server. Both clients (the command line and the web playground) write their operations as
// .graphql documents and use the one generated module, so an operation that stops matching the
// schema fails generation (and `npm run codegen:check`) instead of failing at run time.
const config: CodegenConfig = {
  schema: 'schema.graphql',
  documents: ['src/cli/**/*.graphql', 'web-playground/src/**/*.graphql'],
  // NodeNext needs explicit extensions on relative imports; the generated module is imported by
  // Node (via tsx) and by Vite alike.
  importExtension: '.js',
  generates: {
    'src/generated/graphql/': {
      preset: 'client',
      presetConfig: {
        // Clients read fragment fields directly; masking buys nothing in a CLI or a small page.
        fragmentMasking: false,
      },
      config: {
        // A new custom scalar must be mapped here before anything generates: no silent `any`.
        strictScalars: true,
        scalars: { DateTime: 'string', JSON: 'unknown' },
        enumsAsTypes: true,
        useTypeImports: true,
        // Documents become typed strings: no GraphQL parser in the browser bundle, and the same
        // value goes straight into fetch bodies and graphql-ws payloads.
        documentMode: 'string',
      },
    },
  },
};

export default config;
