import { describe, expect, it } from 'vitest';
import { createLogger } from '../../src/logger.js';

describe('the pretty log format', () => {
  it('writes to a caller-given function: a heading line, then one indented key: value line per field', () => {
    const written: string[] = [];
    const logger = createLogger('info', { format: 'pretty', write: (line) => written.push(line) });
    logger.line('warn', 'graphql operation', { principal: 'ci', operation: 'MyLeases', durationMs: 4.7, token: 'tk' });
    logger.info('plain message');
    logger.debug('filtered out');
    expect(written).toHaveLength(2);
    const [heading, ...fields] = written[0]!.split('\n');
    expect(heading).toMatch(/^\[\d\d:\d\d:\d\d\.\d{3}\] WARN: graphql operation$/);
    expect(fields).toEqual([
      '    principal: "ci"',
      '    operation: "MyLeases"',
      '    durationMs: 4.7',
      '    token: "[redacted]"',
    ]);
    expect(written[1]).toMatch(/INFO: plain message$/);
    // Colour codes are for a terminal, never for a caller's function.
    expect(written.join('')).not.toContain('\u001b[');
  });
});
