import type { CodegenConfig } from '@graphql-codegen/cli';

// The typed client comes from the committed schema.graphql, so generating it needs no running
// server. The operations it types are added with the command line and the web playground.
const config: CodegenConfig = {
  schema: 'schema.graphql',
  documents: ['src/cli/**/*.graphql', 'web-playground/src/**/*.graphql'],
  ignoreNoDocuments: true,
  generates: {
    'src/generated/graphql/': {
      preset: 'client',
      config: {
        scalars: { DateTime: 'string', JSON: 'unknown', ID: 'string' },
        enumsAsTypes: true,
        useTypeImports: true,
      },
    },
  },
};

export default config;
