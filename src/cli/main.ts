#!/usr/bin/env node
import { runBench } from '../bench/index.js'
import { mainHelp } from './help.js'
import { runMockerCommand } from './mocker.js'
import { runServe } from './serve.js'
import { runRegister } from './register.js'
import { runStatus } from './status.js'

const COMMANDS: Record<string, (argv: string[]) => Promise<number>> = {
  serve: runServe,
  mocker: runMockerCommand,
  status: (argv) => runStatus(argv),
  register: runRegister,
  bench: (argv) => runBench(argv)
}

async function main (argv: string[]): Promise<number> {
  const [cmd, ...rest] = argv
  if (cmd === undefined || cmd === '--help' || cmd === '-h' || cmd === 'help') {
    console.log(mainHelp())
    return cmd === undefined ? 2 : 0
  }
  const run = COMMANDS[cmd]
  if (run === undefined) {
    console.error(`switchyard: unknown command '${cmd}'\n\n${mainHelp()}`)
    return 2
  }
  return await run(rest)
}

main(process.argv.slice(2)).then(
  (code) => { process.exitCode = code },
  (err: unknown) => {
    // By code, not class: bench/ raises its own error classes (it imports nothing but tokenize).
    const code = (err as { code?: unknown } | null)?.code
    if (code === 'SWY_ERR_BAD_CONFIG' || code === 'SWY_ERR_BAD_FLAG') {
      console.error(`switchyard: ${(err as Error).message}`)
      process.exitCode = 2
    } else if (typeof code === 'string' && code.startsWith('SWY_ERR_') && code !== 'SWY_ERR_INTERNAL') {
      // Our own errors say what went wrong; a stack trace would only bury it.
      console.error(`switchyard: ${(err as Error).message}`)
      process.exitCode = 1
    } else {
      console.error('switchyard: fatal:', err)
      process.exitCode = 1
    }
  }
)
