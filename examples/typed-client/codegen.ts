import type { CodegenConfig } from '@graphql-codegen/cli';

const config: CodegenConfig = {
  // A copy of the server's schema.graphql works as well as a running server's /graphql.
  schema: process.env['DRYDOCK_SCHEMA'] ?? '../../schema.graphql',
  documents: ['src/**/*.graphql'],
  // Node's ES modules need explicit extensions on relative imports.
  importExtension: '.js',
  generates: {
    'src/gql/': {
      preset: 'client',
      config: {
        // Drydock's custom scalars: DateTime is an ISO-8601 string, JSON any JSON value.
        strictScalars: true,
        scalars: { DateTime: 'string', JSON: 'unknown' },
        useTypeImports: true,
        documentMode: 'string',
      },
    },
  },
};
export default config;
