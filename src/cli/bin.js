#!/usr/bin/env node
// The `drydock` bin: runs the TypeScript sources through tsx (a dependency), so it works right
// after `npm ci` with no build step. tsx is resolved from this file, not from the caller's cwd.
import { register } from 'tsx/esm/api';

register();
const { run } = await import('./main.ts');
await run();
