import type { LoadOptions } from '../options.js'
import type { PromptFactory } from '../prompts.js'
import { readTrace } from '../trace-file.js'
import { MultiTurnWorkload } from './multi-turn.js'
import { SharedPrefixWorkload } from './shared-prefix.js'
import { SyntheticWorkload } from './synthetic.js'
import { TraceWorkload } from './trace.js'
import type { Workload } from './types.js'

export type { Job, RequestSpec, Workload } from './types.js'
export { SyntheticWorkload } from './synthetic.js'
export { SharedPrefixWorkload } from './shared-prefix.js'
export { MultiTurnWorkload } from './multi-turn.js'
export { TraceWorkload } from './trace.js'

export async function createWorkload (opts: LoadOptions, prompts: PromptFactory): Promise<Workload> {
  switch (opts.workload) {
    case 'synthetic': return new SyntheticWorkload(opts, prompts)
    case 'shared-prefix': return new SharedPrefixWorkload(opts, prompts)
    case 'multi-turn': return new MultiTurnWorkload(opts, prompts)
    case 'trace': return new TraceWorkload(opts, prompts, await readTrace(opts.trace!, opts.traceFormat))
  }
}
