import { readdirSync, readFileSync } from 'node:fs'
import { join } from 'node:path'

interface ProfileNode { id: number, callFrame: { functionName: string, url: string, lineNumber: number }, hitCount?: number }

/** Top self-time frames of the newest .cpuprofile in `dir` (from `node --cpu-prof --cpu-prof-dir`). */
export function topFrames (dir: string, n = 12): Array<{ frame: string, selfPct: number }> {
  const files = readdirSync(dir).filter(f => f.endsWith('.cpuprofile')).sort()
  const last = files.at(-1)
  if (last === undefined) return []
  const prof = JSON.parse(readFileSync(join(dir, last), 'utf8')) as { nodes: ProfileNode[], samples: number[] }
  const byId = new Map(prof.nodes.map(node => [node.id, node]))
  const counts = new Map<string, number>()
  for (const id of prof.samples) {
    const node = byId.get(id)
    if (node === undefined) continue
    const f = node.callFrame
    const file = f.url.replace(/^.*\/(node_modules\/|dist\/)/, '$1')
    const key = `${f.functionName || '(anonymous)'} ${file === '' ? '' : `${file}:${f.lineNumber + 1}`}`.trim()
    counts.set(key, (counts.get(key) ?? 0) + 1)
  }
  const total = prof.samples.length
  return [...counts].sort((a, b) => b[1] - a[1]).slice(0, n).map(([frame, c]) => ({ frame, selfPct: 100 * c / total }))
}
