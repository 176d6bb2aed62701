/**
 * The viewer in a real browser: Debian's headless Chromium, driven by playwright-core,
 * opens /view/{cid} from a server on 127.0.0.1. OpenSeadragon must load every visible tile
 * through the IIIF endpoint with no failed request, fetch only the tiles it shows (a low
 * level for the whole image, a few full-resolution tiles once zoomed in), and paint the
 * right pixels. Screenshots are kept in test-output/http/.
 */
import { mkdir } from 'node:fs/promises'
import { join } from 'node:path'
import type { FastifyInstance } from 'fastify'
import { type Browser, chromium, type Page } from 'playwright-core'
import sharp from 'sharp'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { createServer } from '../../src/http/server.js'
import type { TestImage } from '../helpers/oracle.js'
import { type Fixture, fixture, importTestImage } from './helpers.js'

const OUTPUT = new URL('../../test-output/http/', import.meta.url).pathname
const RED = [200, 30, 30]
const BLUE = [30, 60, 200]

/** 2048 x 1536: left half red, right half blue, with a thin dark grid every 128 pixels. */
function halves(): TestImage {
  const width = 2048
  const height = 1536
  const data = new Uint8Array(width * height * 3)
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      const line = x % 128 === 0 || y % 128 === 0
      data.set(line ? [20, 20, 20] : x < width / 2 ? RED : BLUE, (y * width + x) * 3)
    }
  }
  return { width, height, channels: 3, bits: 8, data }
}

interface ViewerState {
  opened: boolean
  fullyLoaded: boolean
  tilesLoaded: number
  tileFailures: number
  errors: string[]
}

let fx: Fixture
let app: FastifyInstance
let base: string
let browser: Browser
let cid: string

beforeAll(async () => {
  fx = await fixture()
  cid = await importTestImage(fx, 'halves', halves(), { tileSize: 256, pyramid: true })
  app = await createServer({ store: fx.store })
  base = await app.listen({ host: '127.0.0.1', port: 0 })
  browser = await chromium.launch({
    executablePath: '/usr/bin/chromium',
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking'],
  })
  await mkdir(OUTPUT, { recursive: true })
})
afterAll(async () => {
  await browser?.close()
  await app?.close()
  await fx?.close()
})

/** Scale factor and column/row of a IIIF tile URL (region width / size width, as OpenSeadragon builds them). */
function tileOf(url: string): { factor: number } | undefined {
  const match = /\/iiif\/3\/[^/]+\/([^/]+)\/([^/]+)\/0\/default\.(jpg|png)$/.exec(new URL(url).pathname)
  if (match === null) return undefined
  const [, region, size] = match as unknown as [string, string, string]
  const regionWidth = region === 'full' ? 2048 : Number(region.split(',')[2])
  const sizeWidth = size === 'max' ? regionWidth : Number(size.split(',')[0])
  return { factor: Math.round(regionWidth / sizeWidth) }
}

async function settle(page: Page, loadedBefore: number): Promise<ViewerState> {
  await page.waitForFunction(
    (before) => {
      const state = (globalThis as unknown as { tessera?: ViewerState }).tessera
      return state?.opened === true && state.fullyLoaded && state.tilesLoaded > before
    },
    loadedBefore,
    { timeout: 30_000, polling: 100 },
  )
  return page.evaluate(() => (globalThis as unknown as { tessera: ViewerState }).tessera)
}

async function pixelAt(png: Buffer, x: number, y: number): Promise<number[]> {
  const { data, info } = await sharp(png).removeAlpha().raw().toBuffer({ resolveWithObject: true })
  const at = (y * info.width + x) * info.channels
  return [data[at]!, data[at + 1]!, data[at + 2]!]
}

function near(actual: number[], expected: number[], tolerance = 30): boolean {
  return actual.every((v, i) => Math.abs(v - expected[i]!) <= tolerance)
}

describe('the viewer page in Chromium', () => {
  it('loads the visible tiles over IIIF, zooms in fetching only what it shows, and paints the image', async () => {
    const page = await browser.newPage({ viewport: { width: 800, height: 600 } })
    const failures: string[] = []
    const tiles: string[] = []
    page.on('requestfailed', (request) => failures.push(`${request.url()} ${request.failure()?.errorText}`))
    page.on('response', (response) => {
      if (response.status() >= 400) failures.push(`${response.url()} ${response.status()}`)
      if (tileOf(response.url()) !== undefined) tiles.push(response.url())
    })
    page.on('pageerror', (error) => failures.push(`page error: ${error.message}`))
    // The 2D canvas drawer: WebGL without a GPU is software-rendered and several times slower.
    await page.goto(`${base}/view/${cid}?drawer=canvas`)
    const home = await settle(page, 0)
    expect(home.errors).toEqual([])
    expect(home.tileFailures).toBe(0)
    expect(failures).toEqual([])
    // The whole image in 800x600: no full-resolution tile is needed.
    const homeFactors = tiles.map((url) => tileOf(url)!.factor)
    expect(homeFactors.length).toBeGreaterThan(0)
    expect(homeFactors).not.toContain(1)
    const homeShot = await page.screenshot({ path: join(OUTPUT, 'viewer-home.png') })
    // Left of centre is red, right of centre blue (the image fills the width, centred).
    expect(near(await pixelAt(homeShot, 225, 275), RED)).toBe(true)
    expect(near(await pixelAt(homeShot, 575, 275), BLUE)).toBe(true)

    // Zoom to full resolution and beyond, centred inside the red half.
    const before = tiles.length
    await page.evaluate(() => {
      const viewer = (globalThis as unknown as { tesseraViewer: { viewport: Record<string, (...a: unknown[]) => unknown> } }).tesseraViewer
      const OSD = (globalThis as unknown as { OpenSeadragon: { Point: new (x: number, y: number) => unknown } }).OpenSeadragon
      viewer.viewport.panTo!(new OSD.Point(0.27, 0.3), true)
      viewer.viewport.zoomTo!(viewer.viewport.imageToViewportZoom!(1.5), undefined, true)
    })
    const zoomed = await settle(page, home.tilesLoaded)
    expect(zoomed.tileFailures).toBe(0)
    expect(failures).toEqual([])
    const fullRes = tiles.slice(before).filter((url) => tileOf(url)!.factor === 1)
    // 800x600 at 1.5x shows about 533x400 image pixels: a handful of the 48 full-resolution tiles.
    expect(fullRes.length).toBeGreaterThan(0)
    expect(fullRes.length).toBeLessThanOrEqual(12)
    const zoomShot = await page.screenshot({ path: join(OUTPUT, 'viewer-zoomed.png') })
    expect(near(await pixelAt(zoomShot, 410, 290), RED)).toBe(true)
    await page.close()
  })
})
