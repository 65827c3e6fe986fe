import { runMocker } from '../mocker/index.js'

/** `switchyard mocker`: N mock engines until SIGTERM/SIGINT. */
export async function runMockerCommand (argv: string[]): Promise<number> {
  const running = await runMocker(argv)
  if (running.fleet === null) return 0 // --help
  return await new Promise<number>((resolve) => {
    const stop = (): void => {
      process.off('SIGTERM', stop)
      process.off('SIGINT', stop)
      running.close().then(() => resolve(0), (err: unknown) => { console.error('switchyard mocker: shutdown failed:', err); resolve(1) })
    }
    process.on('SIGTERM', stop)
    process.on('SIGINT', stop)
  })
}
