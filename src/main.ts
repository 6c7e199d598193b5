import { setFlagsFromString } from 'node:v8';
import { startApp, type App } from './app.js';
import { ConfigError, loadConfig } from './config.js';
import { createLogger } from './logger.js';
import { logProcessOutput } from './process-output.js';
import { checkDirectories, startFailure } from './start-failure.js';
import { serverV8Flag } from './v8-flags.js';

// Set here rather than on node's command line so that every way of starting the server has it;
// functions already compiled by the imports above tier up as before.
const v8Flag = serverV8Flag(process.execArgv);
if (v8Flag) setFlagsFromString(v8Flag);

let config;
try {
  config = loadConfig();
} catch (error) {
  if (!(error instanceof ConfigError)) throw error;
  process.stderr.write(error.message + '\n');
  process.exit(2);
}
const logger = createLogger(config.logLevel, { format: config.logFormat });
logProcessOutput(logger);

// Signals are handled from the first moment, so that Ctrl-C during start-up (migrations, say)
// still closes the database cleanly instead of killing the process mid-write.
let app: App | undefined;
let stopSignal: string | undefined;
/** 1 when the process stops because it must not go on (a newer build migrated its database). */
let exitCode = 0;
const stop = (signal: string) => {
  if (stopSignal) {
    logger.warn(`${signal} again: exiting now`);
    process.exit(1);
  }
  stopSignal = signal;
  logger.info(`${signal}: shutting down`);
  if (app) void shutDown(app);
};
/** After SHUTDOWN_TIMEOUT_MS has cut in-flight requests short, how long the queue and the database get to close. */
const CLOSE_GRACE_MS = 5_000;
const shutDown = async (running: App) => {
  // A resolver waiting in the database (on a row lock another client holds) outlives the
  // connection shutdown closed, and the database's close waits for it: without a deadline the
  // process would stay until its supervisor kills it. The timer is left referenced so that a close
  // stuck on nothing at all still ends here rather than in a silent exit; a clean close exits first.
  const limitMs = config.shutdownTimeoutMs + CLOSE_GRACE_MS;
  let waitingFor = 'the server to close';
  setTimeout(() => {
    logger.warn(`shutdown: still waiting for ${waitingFor} after ${limitMs} ms; exiting`);
    process.exit(1);
  }, limitMs);
  try {
    await running.close((step) => (waitingFor = step));
    logger.info('stopped cleanly');
    process.exit(exitCode);
  } catch (error) {
    logger.error('shutdown failed:', error);
    process.exit(1);
  }
};
process.on('SIGTERM', () => stop('SIGTERM'));
process.on('SIGINT', () => stop('SIGINT'));

try {
  await checkDirectories(config);
  app = await startApp(config, logger);
} catch (error) {
  const setting = startFailure(error, config);
  if (setting) logger.error(`could not start: ${setting}`);
  else logger.error('could not start:', error);
  process.exit(1);
}
// As at start (applyMigrations refuses such a database), with exit code 1: its supervisor sees a
// process that could not go on, and a restart runs whichever build is installed by then.
const running = app;
void running.newerDatabase.then(() => {
  exitCode = 1;
  if (!stopSignal) {
    stopSignal = 'newer database';
    void shutDown(running);
  }
});
if (stopSignal) {
  await shutDown(app);
} else {
  logger.info(`GraphiQL at ${app.graphqlUrl}`);
  // A line tools and tests can wait for.
  process.stdout.write(`drydock listening on ${app.url}\n`);
}
