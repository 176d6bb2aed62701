/**
 * peakRssBytes (src/peak-rss.ts): a child started by a large parent reports its own peak, not
 * the parent's, which getrusage's ru_maxrss carries over exec on Linux.
 */
import { execFile } from 'node:child_process'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { promisify } from 'node:util'
import { describe, expect, it } from 'vitest'
import { peakRssBytes } from '../src/peak-rss.js'

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..')
const MiB = 2 ** 20

describe('peakRssBytes', () => {
  it('is at least the current resident size', () => {
    expect(peakRssBytes()).toBeGreaterThanOrEqual(process.memoryUsage().rss * 0.9)
  })

  it.runIf(process.platform === 'linux')('reports a child its own peak, not the parent that started it', async () => {
    // 384 MiB resident in this process while it starts the child.
    const ballast = Buffer.alloc(384 * MiB, 1)
    const script = `import('${join(ROOT, 'src/peak-rss.ts')}').then((m) => console.log(JSON.stringify([m.peakRssBytes(), process.resourceUsage().maxRSS * 1024])))`
    const { stdout } = await promisify(execFile)(process.execPath, ['--import', 'tsx', '-e', script], { cwd: ROOT })
    expect(ballast[ballast.length - 1]).toBe(1)
    const [own, inherited] = JSON.parse(stdout) as [number, number]
    // ru_maxrss starts at the parent's size: this is what the old figure was.
    expect(inherited).toBeGreaterThan(384 * MiB)
    expect(own).toBeLessThan(200 * MiB)
    expect(own).toBeGreaterThan(10 * MiB)
  })
})
