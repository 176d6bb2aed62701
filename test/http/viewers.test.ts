/**
 * IIIF viewers from npm, as their users run them, against Tessera on another origin: pages
 * served by a second server on 127.0.0.1 (another port: another origin) load OpenSeadragon and
 * Mirador 4 (its UMD build) from node_modules, with their default options, and open an image
 * and a dataset from Tessera in headless Chromium. Every request must succeed (CORS included),
 * nothing may leave the machine, and at 1:1 the screen must show the source's pixels. Also:
 * Tessera's own /view picks the canvas drawer without a GPU, and flips through a dataset's frames.
 * Screenshots are kept in test-output/http/.
 */
import { readFileSync } from 'node:fs'
import { mkdir, mkdtemp, rm } from 'node:fs/promises'
import { createServer as createHttpServer, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { FastifyInstance } from 'fastify'
import { type Browser, chromium, type Page } from 'playwright-core'
import sharp from 'sharp'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { createServer } from '../../src/http/server.js'
import { type BlockStore, commitChanges, importDataset, importImage, openStore } from '../../src/index.js'
import { naiveCrop, type TestImage, writePam } from '../helpers/oracle.js'

const OUTPUT = new URL('../../test-output/http/', import.meta.url).pathname
const MODULES = new URL('../../node_modules/', import.meta.url).pathname

/** Blocks of 16 x 16 pixels of colours drawn from `seed`: flat areas survive JPEG tiles nearly intact. */
function blocks(width: number, height: number, seed: number): TestImage {
  const data = new Uint8Array(width * height * 3)
  let state = seed >>> 0
  const colors: number[][] = []
  for (let i = 0; i < Math.ceil(width / 16) * Math.ceil(height / 16); i++) {
    const c: number[] = []
    for (let k = 0; k < 3; k++) {
      state = (Math.imul(state, 1664525) + 1013904223) >>> 0
      c.push(30 + (state >>> 24) * (195 / 255))
    }
    colors.push(c.map(Math.round))
  }
  const columns = Math.ceil(width / 16)
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) data.set(colors[Math.floor(y / 16) * columns + Math.floor(x / 16)]!, (y * width + x) * 3)
  }
  return { width, height, channels: 3, bits: 8, data }
}

const picture = blocks(1536, 1024, 1)
const frames = [blocks(640, 480, 2), blocks(640, 480, 3), blocks(640, 480, 4)]

let dir: string
let store: BlockStore
let tessera: FastifyInstance
let tesseraUrl: string
let pages: Server
let pagesUrl: string
let browser: Browser
let pictureCid: string

/** The second origin: a few static files, and nothing else. */
function pageServer(): Server {
  const files: Record<string, { type: string; path: string } | { type: string; text: () => string }> = {
    '/openseadragon.min.js': {
      type: 'text/javascript; charset=utf-8',
      path: join(MODULES, 'openseadragon/build/openseadragon/openseadragon.min.js'),
    },
    '/mirador.min.js': { type: 'text/javascript; charset=utf-8', path: join(MODULES, 'mirador/dist/mirador.min.js') },
    '/osd.html': { type: 'text/html; charset=utf-8', text: () => OSD_PAGE },
    '/mirador.html': { type: 'text/html; charset=utf-8', text: () => MIRADOR_PAGE },
  }
  return createHttpServer((request, response) => {
    const url = new URL(request.url ?? '/', 'http://x')
    let file = files[url.pathname]
    if (file === undefined && url.pathname.startsWith('/osd-images/') && /^[a-z_]+\.png$/.test(url.pathname.slice(12))) {
      file = { type: 'image/png', path: join(MODULES, 'openseadragon/build/openseadragon/images', url.pathname.slice(12)) }
    }
    if (file === undefined) {
      response.writeHead(404).end()
      return
    }
    response.writeHead(200, { 'content-type': file.type })
    response.end('path' in file ? readFileSync(file.path) : file.text())
  })
}

// OpenSeadragon with its default options: the element, where its button images are, and what
// to open (a IIIF info.json URL, or the info.json of every canvas of a Presentation manifest).
const OSD_PAGE = `<!doctype html><html><head><meta charset="utf-8"><style>html,body{margin:0;height:100%}#viewer{width:800px;height:600px}</style></head>
<body><div id="viewer"></div><script src="/openseadragon.min.js"></script><script>
const state = (window.state = { loaded: 0, failed: [] })
window.start = async (source) => {
  let tileSources = source
  if (source.endsWith('/manifest')) {
    const manifest = await (await fetch(source)).json()
    tileSources = manifest.items.map((canvas) => canvas.items[0].items[0].body.service[0].id + '/info.json')
  }
  const viewer = (window.viewer = OpenSeadragon({ id: 'viewer', prefixUrl: '/osd-images/', tileSources, sequenceMode: Array.isArray(tileSources) }))
  viewer.addHandler('tile-loaded', () => state.loaded++)
  viewer.addHandler('tile-load-failed', (event) => state.failed.push(event.message))
  viewer.addHandler('open-failed', (event) => state.failed.push('open failed: ' + event.message))
}
</script></body></html>`

// Mirador 4 with its default options: one window on a manifest.
const MIRADOR_PAGE = `<!doctype html><html><head><meta charset="utf-8"><style>html,body{margin:0;height:100%}#mirador{position:absolute;inset:0}</style></head>
<body><div id="mirador"></div><script src="/mirador.min.js"></script><script>
window.start = (manifestId) => {
  window.mirador = Mirador.viewer({ id: 'mirador', windows: [{ id: 'w', manifestId }] })
}
</script></body></html>`

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'tessera-http-viewers-'))
  await writePam(join(dir, 'picture.pam'), picture)
  await mkdir(join(dir, 'frames'))
  for (const [i, frame] of frames.entries()) await writePam(join(dir, 'frames', `frame-${i + 1}.pam`), frame)
  store = await openStore(join(dir, 'store'))
  pictureCid = (await importImage(store, join(dir, 'picture.pam'), { pyramid: true, workers: 0 })).cid.toString()
  await importDataset(store, 'frames', [join(dir, 'frames')], { pyramid: true })
  // 1001 frames (one image under every name): more than one Presentation manifest holds.
  const frame = (await importImage(store, join(dir, 'frames', 'frame-1.pam'), { pyramid: true, workers: 0 })).cid
  const sha256 = new Uint8Array(32)
  const many = Array.from({ length: 1001 }, (_, i) => `shot-${String(i + 1).padStart(4, '0')}.png`)
  await commitChanges(store, 'many', async () => many.map((name) => ({ name, entry: { name, image: frame, size: 1, mtime: 0, sha256 } })), {
    note: 'test',
  })
  tessera = await createServer({ store })
  tesseraUrl = await tessera.listen({ host: '127.0.0.1', port: 0 })
  pages = pageServer()
  await new Promise<void>((resolve) => pages.listen(0, '127.0.0.1', resolve))
  pagesUrl = `http://127.0.0.1:${(pages.address() as AddressInfo).port}`
  browser = await chromium.launch({
    executablePath: '/usr/bin/chromium',
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking'],
  })
  await mkdir(OUTPUT, { recursive: true })
}, 60_000)
afterAll(async () => {
  await browser?.close()
  await new Promise((resolve) => pages?.close(resolve))
  await tessera?.close()
  await store?.close()
  await rm(dir, { recursive: true, force: true })
})

interface Watched {
  readonly page: Page
  readonly failures: string[]
  readonly crossOrigin: string[]
  /** Console messages of the page. */
  readonly console: string[]
  /** Requests sent and not yet answered. */
  inFlight(): number
}

/** A page that records every failed request, error response and page error, and lets nothing leave 127.0.0.1. */
async function openPage(width = 800, height = 600): Promise<Watched> {
  const page = await browser.newPage({ viewport: { width, height } })
  const failures: string[] = []
  const crossOrigin: string[] = []
  const messages: string[] = []
  page.on('console', (message) => messages.push(message.text()))
  let inFlight = 0
  page.on('request', () => inFlight++)
  page.on('requestfinished', () => inFlight--)
  page.on('requestfailed', () => inFlight--)
  await page.route('**/*', (route) => {
    const url = new URL(route.request().url())
    if (url.protocol === 'data:' || url.protocol === 'blob:' || url.hostname === '127.0.0.1') return route.continue()
    failures.push(`off-machine request refused: ${url}`)
    return route.abort()
  })
  page.on('requestfailed', (request) => failures.push(`${request.url()} ${request.failure()?.errorText}`))
  page.on('response', (response) => {
    if (response.status() >= 400) failures.push(`${response.url()} ${response.status()}`)
    if (response.url().startsWith(tesseraUrl)) {
      crossOrigin.push(response.url())
      if (response.headers()['access-control-allow-origin'] !== '*') failures.push(`${response.url()} without Access-Control-Allow-Origin`)
    }
  })
  page.on('pageerror', (error) => failures.push(`page error: ${error.message}`))
  return { page, failures, crossOrigin, console: messages, inFlight: () => inFlight }
}

/**
 * Waits until `element` looks the same in two screenshots taken a moment apart with no request
 * in flight: for viewers whose drawing state is not reachable from the page (Mirador).
 */
async function quiet(watched: Watched, selector: string): Promise<Buffer> {
  let previous: Buffer | undefined
  // Bounded by count, not time: each round is a short pause and one screenshot.
  for (let attempt = 0; attempt < 240; attempt++) {
    await watched.page.waitForTimeout(250)
    if (watched.inFlight() > 0) {
      previous = undefined
      continue
    }
    const shot = await watched.page.locator(selector).screenshot()
    if (previous !== undefined && shot.equals(previous)) return shot
    previous = shot
  }
  throw new Error(`${selector} did not settle`)
}

/**
 * Compares a screenshot patch, centred on the viewer's centre, with the source around image
 * point (cx, cy) at 1:1, allowing a shift of up to `slack` pixels (where the viewer rounds the
 * centre, or its chrome moves it): the share of samples within 24 of the source at the best
 * shift, counting the pixels 3 or more pixels inside a 16-pixel block (JPEG's 4:2:0 chroma
 * blurs colour edges; a scale other than 1:1 or another image moves block interiors too, and
 * no shift makes a patch of random colours match).
 */
async function matchAtOneToOne(
  shot: Buffer,
  screenCenter: [number, number],
  source: TestImage,
  center: [number, number],
  slack = 2,
): Promise<number> {
  const { data, info } = await sharp(shot).removeAlpha().raw().toBuffer({ resolveWithObject: true })
  const W = 160
  const H = 120
  let best = 0
  for (let dy = -slack; dy <= slack; dy++) {
    for (let dx = -slack; dx <= slack; dx++) {
      const region = { x: center[0] - W / 2 + dx, y: center[1] - H / 2 + dy, width: W, height: H }
      const expected = naiveCrop(source, region)
      let good = 0
      let counted = 0
      for (let y = 0; y < H; y++) {
        for (let x = 0; x < W; x++) {
          const inner = (v: number) => v % 16 >= 3 && v % 16 <= 12
          if (!inner(region.x + x) || !inner(region.y + y)) continue
          const s = ((screenCenter[1] - H / 2 + y) * info.width + (screenCenter[0] - W / 2 + x)) * info.channels
          const e = (y * W + x) * 3
          for (let k = 0; k < 3; k++) if (Math.abs(data[s + k]! - expected[e + k]!) <= 24) good++
          counted += 3
        }
      }
      best = Math.max(best, good / counted)
    }
  }
  return best
}

/** The few OpenSeadragon calls the tests make (its types are not a dependency). */
interface Osd {
  world: {
    getItemCount(): number
    getItemAt(i: number): {
      getFullyLoaded(): boolean
      imageToViewportZoom(z: number): number
      imageToViewportCoordinates(x: number, y: number): unknown
    }
    needsDraw(): boolean
  }
  viewport: { zoomTo(z: number, at: undefined, now: boolean): void; panTo(point: unknown, now: boolean): void }
}

/** Waits for the OpenSeadragon viewer window[name] to have drawn every tile the current view needs. */
async function osdSettled(page: Page, name = 'viewer'): Promise<void> {
  // Two animation frames: the viewer has applied the last change and asked for its tiles.
  await page.evaluate(() => {
    const raf = (globalThis as unknown as { requestAnimationFrame(f: () => void): void }).requestAnimationFrame
    return new Promise<void>((resolve) => raf(() => raf(resolve)))
  })
  await page.waitForFunction(
    (name) => {
      const viewer = (globalThis as unknown as Record<string, Osd | undefined>)[name]
      if (viewer === undefined || viewer.world.getItemCount() === 0) return false
      return viewer.world.getItemAt(0).getFullyLoaded() && !viewer.world.needsDraw()
    },
    name,
    { timeout: 60_000, polling: 100 },
  )
}

/** Zooms the OpenSeadragon viewer window[name] to 1:1, centred on image point (x, y) of its item 0. */
async function osdOneToOne(page: Page, x: number, y: number, name = 'viewer'): Promise<void> {
  await page.evaluate(
    ({ x, y, name }) => {
      const viewer = (globalThis as unknown as Record<string, Osd>)[name]!
      const item = viewer.world.getItemAt(0)
      viewer.viewport.zoomTo(item.imageToViewportZoom(1), undefined, true)
      viewer.viewport.panTo(item.imageToViewportCoordinates(x, y), true)
    },
    { x, y, name },
  )
  await osdSettled(page, name)
}

describe('OpenSeadragon from npm on another origin, default options', () => {
  it('shows an image: every tile over CORS, and its pixels at 1:1', async () => {
    const { page, failures, crossOrigin } = await openPage()
    await page.goto(`${pagesUrl}/osd.html`)
    await page.evaluate(
      (url) => (globalThis as unknown as { start(u: string): Promise<void> }).start(url),
      `${tesseraUrl}/iiif/3/${pictureCid}/info.json`,
    )
    await osdSettled(page)
    await osdOneToOne(page, 700, 500)
    const shot = await page.locator('#viewer').screenshot({ path: join(OUTPUT, 'osd-image-1to1.png') })
    expect(failures).toEqual([])
    expect(crossOrigin.filter((url) => url.includes('/default.jpg')).length).toBeGreaterThan(0)
    expect(await matchAtOneToOne(shot, [400, 300], picture, [700, 500])).toBeGreaterThan(0.995)
    await page.close()
  })

  it('shows a dataset, from its Presentation manifest, frame by frame', async () => {
    const { page, failures } = await openPage()
    await page.goto(`${pagesUrl}/osd.html`)
    await page.evaluate(
      (url) => (globalThis as unknown as { start(u: string): Promise<void> }).start(url),
      `${tesseraUrl}/iiif/3/frames/manifest`,
    )
    await osdSettled(page)
    await page.evaluate(() => (globalThis as unknown as { viewer: { goToPage(n: number): void } }).viewer.goToPage(1))
    await osdSettled(page)
    await osdOneToOne(page, 320, 240)
    const shot = await page.locator('#viewer').screenshot({ path: join(OUTPUT, 'osd-dataset-frame2.png') })
    expect(failures).toEqual([])
    expect(await matchAtOneToOne(shot, [400, 300], frames[1]!, [320, 240])).toBeGreaterThan(0.995)
    // And it is not the first frame.
    expect(await matchAtOneToOne(shot, [400, 300], frames[0]!, [320, 240])).toBeLessThan(0.5)
    await page.close()
  })
})

describe('Mirador 4 (UMD build from npm) on another origin, default options', () => {
  /** Opens `manifest` in one Mirador window; optionally shows canvas `canvas`; then 1:1 around (x, y) of the canvas. */
  async function mirador(manifest: string, x: number, y: number, canvas?: string) {
    const watched = await openPage(1000, 700)
    const { page } = watched
    await page.goto(`${pagesUrl}/mirador.html`)
    await page.evaluate((url) => (globalThis as unknown as { start(u: string): void }).start(url), manifest)
    await page.locator('.openseadragon-canvas').first().waitFor({ timeout: 60_000 })
    await quiet(watched, '.openseadragon-container')
    if (canvas !== undefined) {
      await page.evaluate((id) => {
        // Mirador's UMD build exports its redux action creators at the top level.
        const g = globalThis as unknown as {
          mirador: { store: { dispatch(a: unknown): void } }
          Mirador: Record<string, (...a: unknown[]) => unknown>
        }
        g.mirador.store.dispatch(g.Mirador.setCanvas!('w', id))
      }, canvas)
      await quiet(watched, '.openseadragon-container')
    }
    // Mirador's world is in canvas pixels, and OpenSeadragon's zoom is the inverse of the width
    // it shows: 1:1 is 1 / (the container's width in pixels).
    const box = (await page.locator('.openseadragon-container').boundingBox())!
    await page.evaluate(
      ([x, y, width]) => {
        const g = globalThis as unknown as {
          mirador: { store: { dispatch(a: unknown): void } }
          Mirador: Record<string, (...a: unknown[]) => unknown>
        }
        g.mirador.store.dispatch(g.Mirador.updateViewport!('w', { x, y, zoom: 1 / width }))
      },
      [x, y, box.width],
    )
    const shot = await quiet(watched, '.openseadragon-container')
    const center: [number, number] = [Math.round(box.width / 2), Math.round(box.height / 2)]
    return { watched, shot, center }
  }

  it('shows an image from its Presentation manifest: every request succeeds, pixels match at 1:1', async () => {
    const { watched, shot, center } = await mirador(`${tesseraUrl}/iiif/3/${pictureCid}/manifest`, 700, 500)
    await watched.page.screenshot({ path: join(OUTPUT, 'mirador-image-1to1.png') })
    expect(watched.failures).toEqual([])
    expect(watched.crossOrigin.some((url) => url.endsWith('/manifest'))).toBe(true)
    expect(watched.crossOrigin.some((url) => url.endsWith('/default.jpg'))).toBe(true)
    // Mirador's window chrome shifts its viewport's centre by some pixels: a wider search.
    expect(await matchAtOneToOne(shot, center, picture, [700, 500], 24)).toBeGreaterThan(0.995)
    // Mirador hands OpenSeadragon the info.json object, whose crossOriginPolicy (render.ts) makes
    // it load tiles with CORS: its WebGL drawer can use them, with no fallback for tainted data.
    expect(watched.console.filter((m) => /tainted/i.test(m))).toEqual([])
    await watched.page.close()
    // WebGL is software-rendered here: slow.
  }, 240_000)

  it('shows a dataset by name: its frames as canvases, the second one at 1:1', async () => {
    const { watched, shot, center } = await mirador(
      `${tesseraUrl}/iiif/3/frames/manifest`,
      320,
      240,
      `${tesseraUrl}/iiif/3/frames/canvas/2`,
    )
    await watched.page.screenshot({ path: join(OUTPUT, 'mirador-dataset-frame2.png') })
    expect(watched.failures).toEqual([])
    expect(await matchAtOneToOne(shot, center, frames[1]!, [320, 240], 24)).toBeGreaterThan(0.995)
    expect(await matchAtOneToOne(shot, center, frames[0]!, [320, 240], 24)).toBeLessThan(0.5)
    await watched.page.close()
  }, 240_000)
})

describe("Tessera's own viewer", () => {
  it('picks the canvas drawer without a GPU, and shows the image at 1:1', async () => {
    const { page, failures } = await openPage()
    await page.goto(`${tesseraUrl}/view/${pictureCid}`)
    await osdSettled(page, 'tesseraViewer')
    expect(await page.evaluate(() => (globalThis as unknown as { tessera: { drawer: string } }).tessera.drawer)).toBe('canvas')
    await osdOneToOne(page, 700, 500, 'tesseraViewer')
    const shot = await page.locator('#viewer').screenshot({ path: join(OUTPUT, 'view-image-1to1.png') })
    expect(failures).toEqual([])
    expect(await matchAtOneToOne(shot, [400, 300], picture, [700, 500])).toBeGreaterThan(0.995)
    // Asked for explicitly, WebGL it is.
    await page.goto(`${tesseraUrl}/view/${pictureCid}?drawer=webgl`)
    await page.waitForFunction(() => (globalThis as unknown as { tessera?: { drawer: string | null } }).tessera?.drawer != null)
    expect(await page.evaluate(() => (globalThis as unknown as { tessera: { drawer: string } }).tessera.drawer)).toBe('webgl')
    await page.close()
  })

  it("flips through a dataset's frames with the slider and the arrow keys", async () => {
    const { page, failures } = await openPage()
    await page.goto(`${tesseraUrl}/view/frames`)
    await page.waitForFunction(() => (globalThis as unknown as { tessera: { frames: number } }).tessera.frames === 3)
    await osdSettled(page, 'tesseraViewer')
    expect(await page.locator('#slider').getAttribute('max')).toBe('3')
    expect(await page.locator('#frame').textContent()).toBe('1 / 3 · frame-1.pam')
    await page.keyboard.press('ArrowRight')
    await page.waitForFunction(() => (globalThis as unknown as { tessera: { frame: number } }).tessera.frame === 2)
    await osdSettled(page, 'tesseraViewer')
    await osdOneToOne(page, 320, 240, 'tesseraViewer')
    const second = await page.locator('#viewer').screenshot({ path: join(OUTPUT, 'view-dataset-frame2.png') })
    expect(await matchAtOneToOne(second, [400, 300], frames[1]!, [320, 240])).toBeGreaterThan(0.995)
    // The slider goes straight to the last frame.
    await page.locator('#slider').fill('3')
    await page.waitForFunction(() => (globalThis as unknown as { tessera: { frame: number } }).tessera.frame === 3)
    await osdSettled(page, 'tesseraViewer')
    await osdOneToOne(page, 320, 240, 'tesseraViewer')
    const third = await page.locator('#viewer').screenshot({ path: join(OUTPUT, 'view-dataset-frame3.png') })
    expect(await matchAtOneToOne(third, [400, 300], frames[2]!, [320, 240])).toBeGreaterThan(0.995)
    expect(await page.locator('#frame').textContent()).toBe('3 / 3 · frame-3.pam')
    expect(failures).toEqual([])
    await page.close()
  })

  it('pages through a dataset of more frames than one manifest holds', async () => {
    const { page, failures } = await openPage()
    await page.goto(`${tesseraUrl}/view/many`)
    await page.waitForFunction(() => (globalThis as unknown as { tessera: { frames: number } }).tessera.frames === 1000)
    await osdSettled(page, 'tesseraViewer')
    expect(await page.locator('#page option').count()).toBe(2)
    await page.locator('#page').selectOption({ index: 1 })
    await page.waitForFunction(() => (globalThis as unknown as { tessera: { frames: number } }).tessera.frames === 1)
    await osdSettled(page, 'tesseraViewer')
    expect(await page.locator('#frame').textContent()).toBe('1 / 1 · shot-1001.png')
    expect(failures).toEqual([])
    await page.close()
  })
})
