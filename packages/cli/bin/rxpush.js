#!/usr/bin/env node
// A committed shim, so the bin link exists from install time on; the code is built into dist.
import { main } from '../dist/main.js';

process.exitCode = await main(process.argv.slice(2));
