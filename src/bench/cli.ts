/**
 * `switchyard bench`: flags in, a run, the summary table on stdout, optional results JSON and
 * HTML report. Ctrl-C stops the run and still prints what was measured; a second Ctrl-C is left
 * to the default handler (exit at once).
 */
import { mkdir, writeFile } from 'node:fs/promises'
import { dirname } from 'node:path'
import { BadFlagError, BadOptionError } from './errors.js'
import { benchHelp, flagForOption, parseBenchFlags } from './flags.js'
import { runLoad } from './load.js'
import { resolveLoadOptions } from './options.js'
import { renderReport } from './report/html.js'
import type { LoadResult } from './results.js'
import { formatSummary } from './table.js'

export interface BenchIo {
  stdout: { write (s: string): unknown }
  stderr: { write (s: string): unknown, isTTY?: boolean, columns?: number }
  /** Installs Ctrl-C handling (default: process SIGINT). */
  signals: boolean
}

async function writeOut (path: string, text: string): Promise<void> {
  await mkdir(dirname(path), { recursive: true })
  await writeFile(path, text)
}

/** `concurrency must be …` → `--concurrency must be …`; camelCase option names inside become flags too. */
function optionMessageAsFlags (err: BadOptionError): string {
  let msg = err.message.startsWith(err.option) ? flagForOption(err.option) + err.message.slice(err.option.length) : `${flagForOption(err.option)}: ${err.message}`
  msg = msg.replace(/\b[a-z]+[A-Z][A-Za-z]*\b/g, (key) => flagForOption(key))
  return msg
}

/**
 * Runs `switchyard bench` with its arguments (after the subcommand) and returns the exit code.
 * Bad flags throw an error whose `code` is SWY_ERR_BAD_FLAG.
 *
 * @example
 * process.exitCode = await runBench(['--url', 'http://127.0.0.1:8000', '--model', 'm', '--stream', '--concurrency', '8'])
 */
export async function runBench (argv: string[], io: BenchIo = { stdout: process.stdout, stderr: process.stderr, signals: true }): Promise<number> {
  const cli = parseBenchFlags(argv)
  if (cli.help) {
    io.stdout.write(benchHelp() + '\n')
    return 0
  }
  cli.load.progress = !cli.quiet
  try {
    // Validate before anything starts, so a bad combination is a usage error (exit 2).
    resolveLoadOptions(cli.load)
  } catch (err) {
    if (err instanceof BadOptionError) throw new BadFlagError(optionMessageAsFlags(err))
    throw err
  }
  const abort = new AbortController()
  const onSigint = (): void => {
    io.stderr.write('\nstopping: cancelling requests in flight (Ctrl-C again to quit now)\n')
    process.removeListener('SIGINT', onSigint)
    abort.abort(new Error('interrupted'))
  }
  if (io.signals) process.on('SIGINT', onSigint)
  let result: LoadResult
  try {
    result = await runLoad(cli.load, { signal: abort.signal, progressStream: io.stderr })
  } finally {
    if (io.signals) process.removeListener('SIGINT', onSigint)
  }
  io.stdout.write(formatSummary(result) + '\n')
  if (cli.output !== null) {
    await writeOut(cli.output, JSON.stringify(result) + '\n')
    io.stderr.write(`results: ${cli.output}\n`)
  }
  if (cli.report !== null) {
    await writeOut(cli.report, renderReport(result))
    io.stderr.write(`report: ${cli.report}\n`)
  }
  const s = result.summary.requests
  return s.total > 0 && s.ok === 0 ? 1 : 0
}
