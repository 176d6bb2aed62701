#!/usr/bin/env node
// The CLI from its bundle (scripts/bundle.mjs), built by `npm ci` / `npm run build`.
import { main } from '../dist/bundle/main.js'

process.exitCode = await main(process.argv.slice(2))
