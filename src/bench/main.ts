#!/usr/bin/env node
/**
 * Runs the load generator without the `switchyard` CLI (for scripts and child processes):
 * `node dist/src/bench/main.js --url ... --model ...`. Same flags and exit codes as `switchyard bench`.
 */
import { runBench } from './cli.js'

runBench(process.argv.slice(2)).then(
  (code) => { process.exitCode = code },
  (err: unknown) => {
    const code = (err as { code?: unknown }).code
    if (code === 'SWY_ERR_BAD_FLAG') {
      process.stderr.write(`switchyard bench: ${(err as Error).message}\n`)
      process.exitCode = 2
    } else {
      process.stderr.write(`switchyard bench: ${typeof code === 'string' ? code + ': ' : ''}${err instanceof Error ? err.message : String(err)}\n`)
      process.exitCode = 1
    }
  }
)
