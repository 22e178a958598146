#!/usr/bin/env node
// The installed command runs the compiled CLI (npm run build first when working from a checkout).
import '../dist/src/cli/main.js';
