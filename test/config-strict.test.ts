import { describe, expect, it } from 'vitest';
import { ConfigError, configVariables, loadConfig } from '../src/config.js';
import { redactUrl, schemaFromUrl } from '../src/db/database.js';

// What an operator types into the environment: only what it plainly says is taken.

function problems(env: Record<string, string>): string[] {
  try {
    loadConfig(env);
  } catch (error) {
    if (error instanceof ConfigError) return error.problems;
    throw error;
  }
  return [];
}

const wholeNumbers = [
  'PORT',
  'DATABASE_POOL_SIZE',
  'SHUTDOWN_TIMEOUT_MS',
  'WORKER_CONCURRENCY',
  'MAX_QUERY_DEPTH',
  'MAX_QUERY_COST',
  'MAX_INPUT_DEPTH',
  'MAX_QUERY_TOKENS',
  'LEASE_ATTRIBUTES_MAX_KEYS',
  'LEASE_ATTRIBUTE_VALUE_MAX_LENGTH',
  'LEASE_ATTRIBUTES_MAX_BYTES',
  'MAX_BODY_BYTES',
  'LISTEN_BACKLOG',
  'RATE_LIMIT_PER_MINUTE',
  'AUTH_FAILURES_PER_MINUTE',
  'MAX_IN_FLIGHT',
  'MAX_IN_FLIGHT_PER_PRINCIPAL',
  'MIN_IN_FLIGHT',
  'EVENT_LOOP_LAG_LIMIT_MS',
  'WS_MAX_BUFFERED_BYTES',
  'JOB_CLAIM_TTL_MS',
  'WARM_UP_LEASES',
];

describe('numbers in the environment', () => {
  it('refuses a blank whole number, naming the variable and what it got', () => {
    expect(problems({ WORKER_CONCURRENCY: ' ' })).toEqual(['WORKER_CONCURRENCY must be a whole number (got " ")']);
    expect(problems({ PORT: ' ' })).toEqual(['PORT must be a whole number (got " ")']);
    for (const name of wholeNumbers) {
      expect(problems({ [name]: '\t' }), name).toEqual([`${name} must be a whole number (got "\t")`]);
    }
  });

  it('refuses hexadecimal, binary, octal, exponents, fractions and signs other than a minus', () => {
    for (const value of [
      '0x1005',
      '0b1',
      '0o7',
      '4.5e3',
      '1e3',
      '4000.0',
      '4000.5',
      '+4000',
      'Infinity',
      '4_000',
      '40 00',
    ]) {
      expect(problems({ PORT: value }), value).toEqual([`PORT must be a whole number (got "${value}")`]);
      expect(problems({ MAX_BODY_BYTES: value }), value).toEqual([
        `MAX_BODY_BYTES must be a whole number (got "${value}")`,
      ]);
    }
  });

  it('takes plain decimal digits, with blanks around them, and leaves a minus to the range check', () => {
    expect(loadConfig({ PORT: '4101' }).port).toBe(4101);
    expect(loadConfig({ PORT: ' 4101\n' }).port).toBe(4101);
    expect(loadConfig({ PORT: '0' }).port).toBe(0);
    expect(loadConfig({ WORKER_CONCURRENCY: '0' }).workerConcurrency).toBe(0);
    expect(loadConfig({ MAX_BODY_BYTES: '0100' }).maxBodyBytes).toBe(100);
    expect(problems({ PORT: '-1' })).toEqual(['PORT must be between 0 and 65535 (got "-1")']);
    expect(problems({ PORT: '65536' })).toEqual(['PORT must be between 0 and 65535 (got "65536")']);
    expect(problems({ WORKER_CONCURRENCY: '-1' })).toEqual([
      'WORKER_CONCURRENCY must be 0 (no worker) or more (got "-1")',
    ]);
    expect(problems({ DATABASE_POOL_SIZE: '0' })).toEqual(['DATABASE_POOL_SIZE must be at least 1 (got "0")']);
    expect(loadConfig({}).warmUpLeases).toBe(200);
    expect(loadConfig({ WARM_UP_LEASES: '0' }).warmUpLeases).toBe(0);
    expect(problems({ WARM_UP_LEASES: '-1' })).toEqual(['WARM_UP_LEASES must be 0 (no warm-up) or more (got "-1")']);
    expect(problems({ WARM_UP_LEASES: '1001' })).toEqual(['WARM_UP_LEASES must be at most 1000 (got "1001")']);
  });

  it('refuses a duration longer than a timer can wait, which Node would turn into 1 ms', () => {
    for (const name of ['SHUTDOWN_TIMEOUT_MS', 'EVENT_LOOP_LAG_LIMIT_MS', 'JOB_CLAIM_TTL_MS']) {
      expect(problems({ [name]: '3000000000' }), name).toEqual([
        `${name} must be at most 2147483647 (a timer's longest) (got "3000000000")`,
      ]);
      expect(problems({ [name]: '2147483647' }), name).toEqual([]);
    }
  });

  it('keeps the defaults when a variable is unset', () => {
    const config = loadConfig({});
    expect([config.port, config.workerConcurrency, config.inFlightLatencyTolerance, config.passGapMs]).toEqual([
      4000,
      4,
      2,
      undefined,
    ]);
  });

  it('still reads an empty SCHEDULING_PASS_GAP_MS as unset, and holds its value to plain digits', () => {
    expect(loadConfig({ SCHEDULING_PASS_GAP_MS: '' }).passGapMs).toBeUndefined();
    expect(loadConfig({ SCHEDULING_PASS_GAP_MS: ' 5 ' }).passGapMs).toBe(5);
    expect(problems({ SCHEDULING_PASS_GAP_MS: '0x10' })).toEqual([
      'SCHEDULING_PASS_GAP_MS must be a whole number (got "0x10")',
    ]);
    expect(problems({ SCHEDULING_PASS_GAP_MS: '1e3' })).toEqual([
      'SCHEDULING_PASS_GAP_MS must be a whole number (got "1e3")',
    ]);
    expect(problems({ SCHEDULING_PASS_GAP_MS: '-1' })).toEqual(['SCHEDULING_PASS_GAP_MS must be 0 or more (got "-1")']);
  });

  it('takes IN_FLIGHT_LATENCY_TOLERANCE as a plain decimal number', () => {
    expect(loadConfig({ IN_FLIGHT_LATENCY_TOLERANCE: '1.5' }).inFlightLatencyTolerance).toBe(1.5);
    expect(loadConfig({ IN_FLIGHT_LATENCY_TOLERANCE: ' 3 ' }).inFlightLatencyTolerance).toBe(3);
    for (const value of [' ', '0x2', '2e0', '1.5.1', 'Infinity', '+2']) {
      expect(problems({ IN_FLIGHT_LATENCY_TOLERANCE: value }), value).toEqual([
        `IN_FLIGHT_LATENCY_TOLERANCE must be a number (got "${value}")`,
      ]);
    }
    expect(problems({ IN_FLIGHT_LATENCY_TOLERANCE: '0.5' })).toEqual([
      'IN_FLIGHT_LATENCY_TOLERANCE must be at least 1 (the uncontended latency) (got "0.5")',
    ]);
  });
});

describe('an empty value', () => {
  // FOO= is what docker-compose and systemd's EnvironmentFile give for a value left blank.
  const terminal = { isTTY: false };
  const unset = loadConfig({}, terminal);

  it('is unset, for every variable the configuration reads: its default applies', () => {
    expect(configVariables).toEqual(expect.arrayContaining(['PORT', 'DATA_DIR', 'LOG_LEVEL', 'SSH_STATE_DIR']));
    for (const name of configVariables) {
      expect(loadConfig({ [name]: '' }, terminal), name).toEqual(unset);
    }
    expect(loadConfig(Object.fromEntries(configVariables.map((name) => [name, ''])), terminal)).toEqual(unset);
  });

  it('is unset next to other values too, and leaves them as they are', () => {
    const env = { PORT: '4101', DATA_DIR: '/tmp/drydock-data', LOG_LEVEL: 'debug' };
    const chosen = loadConfig(env, terminal);
    for (const name of configVariables) {
      if (name in env) continue;
      expect(loadConfig({ ...env, [name]: '' }, terminal), name).toEqual(chosen);
    }
  });

  it('does not count as setting SSH_STATE_DIR, which is checked at start only when set', () => {
    expect(loadConfig({ SSH_STATE_DIR: '' }).sshStateDirSet).toBe(false);
    expect(loadConfig({}).sshStateDirSet).toBe(false);
    expect(loadConfig({ SSH_STATE_DIR: '/tmp/drydock-ssh' }).sshStateDirSet).toBe(true);
  });
});

describe('names and paths in the environment', () => {
  it('refuses a HOST, DATA_DIR or SSH_STATE_DIR of blanks only', () => {
    expect(problems({ HOST: ' ', DATA_DIR: ' ', SSH_STATE_DIR: '\t' })).toEqual([
      'HOST must not be empty (got " ")',
      'DATA_DIR must not be empty (got " ")',
      'SSH_STATE_DIR must not be empty (got "\t")',
    ]);
  });

  it('takes them without the blanks around them', () => {
    expect(loadConfig({ HOST: ' 0.0.0.0 ' }).host).toBe('0.0.0.0');
    expect(loadConfig({ DATA_DIR: ' /tmp/drydock-data ' }).dataDir).toBe('/tmp/drydock-data');
  });
});

describe('redactUrl', () => {
  it('masks the password before the host', () => {
    expect(redactUrl('postgresql://app:USERSECRET@db.example:5432/drydock')).toBe(
      'postgresql://app:***@db.example:5432/drydock',
    );
  });

  it('masks a password given in the query string, however often and however its name is escaped', () => {
    const url = 'postgresql://postgres@127.0.0.1:5432/db?schema=s&password=QSECRET42';
    expect(redactUrl(url)).toBe('postgresql://postgres@127.0.0.1:5432/db?schema=s&password=***');
    const shown = redactUrl(
      'postgres://u:P1@h/db?password=Q1&sslmode=verify-full&sslpassword=KEYPASS&pass%77ord=Q2&password=Q3',
    );
    expect(shown).toBe(
      'postgres://u:***@h/db?password=***&sslmode=verify-full&sslpassword=***&pass%77ord=***&password=***',
    );
    for (const secret of ['P1', 'Q1', 'Q2', 'Q3', 'KEYPASS']) expect(shown).not.toContain(secret);
  });

  it('leaves the other parameters as they were written', () => {
    const url = 'postgresql://app@db.example/drydock?schema=drydock&sslmode=require&application_name=dry%20dock';
    expect(redactUrl(url)).toBe(url);
  });

  it('reads libpq’s Unix-socket form, whose host is empty, and shows it as written', () => {
    expect(redactUrl('postgresql://app:SOCKSECRET@/drydock?host=/run/postgresql&password=Q')).toBe(
      'postgresql://app:***@/drydock?host=/run/postgresql&password=***',
    );
    expect(redactUrl('postgresql:///drydock?host=/run/postgresql')).toBe('postgresql:///drydock?host=/run/postgresql');
    expect(schemaFromUrl('postgresql://app@/drydock?host=/run/postgresql&schema=ci')).toBe('ci');
  });
});
