import { test } from 'node:test'
import assert from 'node:assert/strict'
import { existsSync } from 'node:fs'
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { chromium } from 'playwright-core'
import { runLoad } from '../../src/bench/load.js'
import { renderReport } from '../../src/bench/report/html.js'
import { FixtureServer } from './fixture-server.js'

const CHROMIUM = '/usr/bin/chromium'
const ARGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync']

test('the HTML report is self-contained: no script, no external URL', async () => {
  const server = new FixtureServer({ tokenDelayMs: 1 })
  const url = await server.listen()
  try {
    const r = await runLoad({ url, model: 'm', stream: true, concurrency: 2, numRequests: 10, osl: 4 })
    const html = renderReport(r)
    assert.ok(!/<script/i.test(html))
    assert.ok(!/(src|href)="https?:/i.test(html))
    assert.ok(!html.includes('Per priority'), 'no priority section without a mix')
    assert.ok(!html.includes('Requests per worker'), 'no worker section without gateway metrics')
  } finally {
    await server.close()
  }
})

test('the HTML report renders in Chromium with its plots drawn', { skip: existsSync(CHROMIUM) || process.env.CI === 'true' ? false : `${CHROMIUM} is not installed (CI installs it and does not skip)` }, async () => {
  const server = new FixtureServer({ firstTokenDelayMs: 3, tokenDelayMs: 1, workerCounts: { 'worker-a': 0, 'worker-b': 0 }, fault: (i) => i % 17 === 5 ? { status: 429, error: { message: 'queue full', type: 'rate_limit_error' } } : null })
  const url = await server.listen()
  const dir = await mkdtemp(join(tmpdir(), 'swy-report-'))
  const timer = setInterval(() => { server.opts.workerCounts!['worker-a']! += 2; server.opts.workerCounts!['worker-b']! += 1 }, 5)
  const browser = await chromium.launchPersistentContext(join(dir, 'profile'), { executablePath: CHROMIUM, headless: true, args: ARGS })
  try {
    const r = await runLoad({ url, model: 'm', stream: true, requestRate: 150, numRequests: 120, isl: { mean: 64, stddev: 16 }, osl: { mean: 12, stddev: 4 }, priorityMix: { high: 1, medium: 1, low: 2 }, sloTtftMs: 20 })
    clearInterval(timer)
    const file = join(dir, 'report.html')
    await writeFile(file, renderReport(r))
    const page = await browser.newPage()
    const problems: string[] = []
    page.on('console', (m) => { if (m.type() === 'error' || m.type() === 'warning') problems.push(m.text()) })
    page.on('pageerror', (e) => problems.push(e.message))
    page.on('request', (req) => { if (!req.url().startsWith('file:')) problems.push('network request ' + req.url()) })
    await page.setViewportSize({ width: 1280, height: 900 })
    await page.goto('file://' + file)
    const charts = await page.$$eval('svg.chart', (svgs) => svgs.map((s) => {
      const box = s.getBoundingClientRect()
      const paths = [...s.querySelectorAll('path.series')].map((p) => (p as unknown as { getTotalLength (): number }).getTotalLength())
      return { title: s.getAttribute('aria-label'), w: box.width, h: box.height, paths, bars: s.querySelectorAll('rect.bar').length }
    }))
    const titles = charts.map((c) => c.title)
    for (const t of ['TTFT CDF', 'Inter-token latency CDF', 'End-to-end latency CDF', 'Output token throughput over time', 'Requests over time', 'Requests in flight', 'TTFT CDF by priority', 'End-to-end CDF by priority', 'Requests per worker']) {
      assert.ok(titles.includes(t), `chart ${t} is missing; have ${titles.join(', ')}`)
    }
    for (const c of charts) {
      assert.ok(c.w > 100 && c.h > 50, `${c.title} has size ${c.w}×${c.h}`)
      if (c.title === 'Requests per worker') assert.equal(c.bars, 2)
      else assert.ok(c.paths.length > 0 && c.paths.every((len) => len > 10), `${c.title} draws its lines: ${JSON.stringify(c.paths)}`)
    }
    const byPriority = charts.find((c) => c.title === 'TTFT CDF by priority')!
    assert.equal(byPriority.paths.length, 3)
    const text = await page.textContent('body')
    assert.match(text ?? '', /high \(priority 0\)/)
    assert.match(text ?? '', /rate_limit_error/)
    await page.screenshot({ path: join(tmpdir(), 'switchyard-bench-report.png'), fullPage: true })
    assert.deepEqual(problems, [])
  } finally {
    clearInterval(timer)
    await browser.close()
    await server.close()
    await rm(dir, { recursive: true, force: true })
  }
})
