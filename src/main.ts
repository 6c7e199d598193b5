import { startApp } from './app.js';
import { ConfigError, loadConfig } from './config.js';
import { createLogger } from './logger.js';

let config;
try {
  config = loadConfig();
} catch (error) {
  if (!(error instanceof ConfigError)) throw error;
  process.stderr.write(error.message + '\n');
  process.exit(2);
}

const logger = createLogger(config.logLevel);
const app = await startApp(config, logger).catch((error: unknown) => {
  logger.error('could not start:', error);
  process.exit(1);
});
logger.info(`GraphiQL at ${app.graphqlUrl}`);
// A line tools and tests can wait for.
process.stdout.write(`drydock listening on ${app.url}\n`);

let stopping = false;
const stop = (signal: string) => {
  if (stopping) {
    logger.warn(`${signal} again: exiting now`);
    process.exit(1);
  }
  stopping = true;
  logger.info(`${signal}: shutting down`);
  app.close().then(
    () => {
      logger.info('stopped cleanly');
      process.exit(0);
    },
    (error: unknown) => {
      logger.error('shutdown failed:', error);
      process.exit(1);
    },
  );
};
process.on('SIGTERM', () => stop('SIGTERM'));
process.on('SIGINT', () => stop('SIGINT'));
