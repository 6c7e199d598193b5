#!/usr/bin/env node
// The `drydock` bin; package.json points at its compiled form, dist/cli/bin.js.
import { run } from './main.js';

await run();
