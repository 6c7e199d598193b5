import { startApp, type App } from './app.js';
import { ConfigError, loadConfig } from './config.js';
import { createLogger } from './logger.js';
import { startFailure } from './start-failure.js';

let config;
try {
  config = loadConfig();
} catch (error) {
  if (!(error instanceof ConfigError)) throw error;
  process.stderr.write(error.message + '\n');
  process.exit(2);
}
const logger = createLogger(config.logLevel, { format: config.logFormat });

// Signals are handled from the first moment, so that Ctrl-C during start-up (migrations, say)
// still closes the database cleanly instead of killing the process mid-write.
let app: App | undefined;
let stopSignal: string | undefined;
const stop = (signal: string) => {
  if (stopSignal) {
    logger.warn(`${signal} again: exiting now`);
    process.exit(1);
  }
  stopSignal = signal;
  logger.info(`${signal}: shutting down`);
  if (app) void shutDown(app);
};
const shutDown = async (running: App) => {
  try {
    await running.close();
    logger.info('stopped cleanly');
    process.exit(0);
  } catch (error) {
    logger.error('shutdown failed:', error);
    process.exit(1);
  }
};
process.on('SIGTERM', () => stop('SIGTERM'));
process.on('SIGINT', () => stop('SIGINT'));

try {
  app = await startApp(config, logger);
} catch (error) {
  const setting = startFailure(error, config);
  if (setting) logger.error(`could not start: ${setting}`);
  else logger.error('could not start:', error);
  process.exit(1);
}
if (stopSignal) {
  await shutDown(app);
} else {
  logger.info(`GraphiQL at ${app.graphqlUrl}`);
  // A line tools and tests can wait for.
  process.stdout.write(`drydock listening on ${app.url}\n`);
}
