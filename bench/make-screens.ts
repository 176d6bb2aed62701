/**
 * The screenshot series of `npm run bench:dedup`, made from nothing outside the repository:
 * simulated minute-by-minute 1920x1080 desktop screenshots (PNG) of one working session. An
 * editor, a terminal, a document viewer and a file list, filled with real text (TypeScript's
 * lib.es5.d.ts and the READMEs of the installed npm packages, so it is pinned by
 * package-lock.json), over a wallpaper, with a panel whose clock and CPU graph change every
 * frame. Idle stretches (median 9 minutes: only the panel changes) alternate with bursts of
 * activity (median 6 minutes: typing, scrolling, terminal output, switching and moving
 * windows), as a screenshot archive has. Each frame is an SVG rendered by sharp (librsvg and
 * Pango, DejaVu fonts: fonts-dejavu-core is installed with apt if missing). Deterministic for
 * a seed, sharp's version and the fonts; about 0.3 s a frame. Re-runnable: frames already
 * there are kept (delete the folder after changing this file).
 *
 *   node --import tsx bench/make-screens.ts [DIR] [--frames 120] [--seed 7]
 *
 * Writes DIR/series/2025-06-02_08-30.png, 2025-06-02_08-31.png, ... (default DIR bench/data/screens).
 */
import { spawnSync } from 'node:child_process'
import { existsSync, mkdirSync, readdirSync, readFileSync, renameSync } from 'node:fs'
import { join, resolve } from 'node:path'
import { pathToFileURL } from 'node:url'
import { parseArgs } from 'node:util'
import sharp from 'sharp'
import { random } from './lib.js'

const W = 1920
const H = 1080
const PANEL = 36
const TITLE = 28
const MONO = { family: 'DejaVu Sans Mono', size: 14, line: 18, char: 8.43 }
const SANS = { family: 'DejaVu Sans', size: 15, line: 21, char: 8.2 }
/** The session starts at this minute (UTC, one frame a minute). */
const START = Date.UTC(2025, 5, 2, 8, 30)

type Kind = 'editor' | 'terminal' | 'document' | 'files'

interface Window {
  readonly kind: Kind
  readonly title: string
  x: number
  y: number
  width: number
  height: number
  /** First line shown (editor, document). */
  top: number
  open: boolean
}

interface Desktop {
  /** Bottom of the stack first: the last open window has the focus. */
  readonly windows: Window[]
  /** The editor's buffer (typing inserts lines) and the terminal's scrollback. */
  readonly code: string[]
  readonly terminal: string[]
  readonly prose: string[]
  readonly files: string[]
  readonly cpu: number[]
}

const xml = (text: string) => text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;')

/** Wraps paragraphs to `columns`, keeping blank lines between them. */
function wrap(text: string, columns: number): string[] {
  const lines: string[] = []
  for (const paragraph of text.split(/\n\s*\n/)) {
    let line = ''
    for (const word of paragraph
      .replace(/[#*`|<>[\]()]/g, ' ')
      .split(/\s+/)
      .filter(Boolean)) {
      if (line.length + word.length + 1 > columns) {
        lines.push(line)
        line = word
      } else line = line ? `${line} ${word}` : word
    }
    if (line) lines.push(line, '')
  }
  return lines
}

/** The text the windows show: files pinned by package-lock.json. */
function texts(modules: string) {
  const code = readFileSync(join(modules, 'typescript/lib/lib.es5.d.ts'), 'utf8').replace(/\t/g, '    ').split('\n')
  const packages = readdirSync(modules)
    .filter((name) => !name.startsWith('.') && !name.startsWith('@'))
    .sort()
  const readmes = packages.map((name) => join(modules, name, 'README.md')).filter((path) => existsSync(path))
  const prose = wrap(readmes.map((path) => readFileSync(path, 'utf8')).join('\n\n'), 78).slice(0, 20_000)
  return { code, prose, files: packages }
}

function initialDesktop(modules: string): Desktop {
  const { code, prose, files } = texts(modules)
  const windows: Window[] = [
    { kind: 'files', title: 'node_modules - Files', x: 60, y: 60, width: 520, height: 700, top: 0, open: true },
    { kind: 'document', title: 'README.md - Document Viewer', x: 1000, y: 40, width: 860, height: 940, top: 0, open: true },
    { kind: 'terminal', title: 'Terminal', x: 160, y: 560, width: 900, height: 460, top: 0, open: true },
    { kind: 'editor', title: 'lib.es5.d.ts - Editor', x: 120, y: 30, width: 1100, height: 760, top: 0, open: true },
  ]
  return {
    windows,
    code: [...code],
    terminal: ['$ npm test', '', ...files.slice(0, 12).map((name) => ` ✓ ${name}`)],
    prose,
    files,
    cpu: [],
  }
}

/** One minute of activity: a few actions on the focused window, sometimes another window. */
function act(desktop: Desktop, next: () => number): void {
  const pick = (n: number) => Math.floor(next() * n)
  const open = desktop.windows.filter((w) => w.open)
  const focused = open[open.length - 1]!
  const r = next()
  if (r < 0.15) {
    // Switch to another window (raise it).
    const target = open[pick(open.length - 1)]!
    desktop.windows.splice(desktop.windows.indexOf(target), 1)
    desktop.windows.push(target)
  } else if (r < 0.22) {
    focused.x = Math.max(0, Math.min(W - focused.width, focused.x + pick(301) - 150))
    focused.y = Math.max(0, Math.min(H - PANEL - focused.height, focused.y + pick(201) - 100))
  } else if (r < 0.25) {
    // Close a window, or reopen a closed one.
    const closed = desktop.windows.filter((w) => !w.open)
    if (closed.length > 0) closed[0]!.open = true
    else if (open.length > 2) focused.open = false
  }
  for (let n = 1 + pick(3); n > 0; n--) {
    const window = desktop.windows.filter((w) => w.open).at(-1)!
    if (window.kind === 'editor') {
      if (next() < 0.6) {
        // Type a few lines at the cursor (the middle of the view).
        const at = window.top + 12 + pick(10)
        const from = pick(desktop.code.length - 10)
        desktop.code.splice(at, 0, ...desktop.code.slice(from, from + 1 + pick(6)))
      } else window.top = Math.max(0, window.top + pick(60) - 15)
    } else if (window.kind === 'terminal') {
      const name = desktop.files[pick(desktop.files.length)]!
      const commands = [
        [
          `$ ls -l node_modules/${name}`,
          ...desktop.files
            .slice(pick(desktop.files.length - 8))
            .slice(0, 2 + pick(6))
            .map((f) => `drwxr-xr-x 4 dev dev 4096 Jun  2 ${f}`),
        ],
        [
          '$ npm run check',
          '',
          '> tsc --noEmit -p . && biome check src test bench && vitest run',
          ...Array.from(
            { length: 3 + pick(8) },
            () => ` ✓ test/${desktop.files[pick(desktop.files.length)]}.test.ts (${1 + pick(40)} tests) ${pick(900)}ms`,
          ),
        ],
        [
          `$ git log --oneline -${3 + pick(5)}`,
          ...Array.from(
            { length: 3 + pick(5) },
            () => `${(pick(2 ** 28) + 2 ** 28).toString(16)} ${desktop.prose[pick(desktop.prose.length)]!.slice(0, 60)}`,
          ),
        ],
      ]
      desktop.terminal.push(...commands[pick(commands.length)]!)
    } else if (window.kind === 'document') window.top = Math.max(0, window.top + pick(50) - 10)
    else window.top = Math.max(0, window.top + pick(20) - 8)
  }
}

function svgWindow(desktop: Desktop, window: Window, id: number, focused: boolean): string {
  const { x, y, width, height } = window
  const body = { x: x + 1, y: y + TITLE, width: width - 2, height: height - TITLE - 1 }
  const dark = window.kind === 'terminal'
  const font = window.kind === 'editor' || dark ? MONO : SANS
  const rows = Math.floor((body.height - 8) / font.line)
  const columns = Math.floor((body.width - 60) / font.char)
  let lines: string[]
  if (window.kind === 'editor')
    lines = desktop.code.slice(window.top, window.top + rows).map((line, i) => `${String(window.top + i + 1).padStart(5)}  ${line}`)
  else if (dark) lines = desktop.terminal.slice(-rows)
  else if (window.kind === 'document') lines = desktop.prose.slice(window.top, window.top + rows)
  else lines = desktop.files.slice(window.top, window.top + rows).map((name) => `▸ ${name}`)
  const text = lines
    .map((line, i) => `<text x="${body.x + 10}" y="${body.y + 6 + (i + 1) * font.line - 4}">${xml(line.slice(0, columns))}</text>`)
    .join('')
  return [
    `<clipPath id="c${id}"><rect x="${body.x}" y="${body.y}" width="${body.width}" height="${body.height}"/></clipPath>`,
    `<rect x="${x + 4}" y="${y + 6}" width="${width}" height="${height}" rx="6" fill="#000" opacity="0.25"/>`,
    `<rect x="${x}" y="${y}" width="${width}" height="${height}" rx="6" fill="${dark ? '#1e1f29' : '#fbfbfb'}" stroke="#888"/>`,
    `<rect x="${x}" y="${y}" width="${width}" height="${TITLE}" rx="6" fill="${focused ? '#3b6ea5' : '#c9ccd1'}"/>`,
    `<text x="${x + 12}" y="${y + 19}" font-family="${SANS.family}" font-size="13" fill="${focused ? '#fff' : '#333'}">${xml(window.title)}</text>`,
    ...['#e0443e', '#dea123', '#1aab29'].map((fill, i) => `<circle cx="${x + width - 18 - i * 22}" cy="${y + 14}" r="6" fill="${fill}"/>`),
    `<g clip-path="url(#c${id})" font-family="${font.family}" font-size="${font.size}" fill="${dark ? '#d8d8d8' : '#222'}" xml:space="preserve">${text}</g>`,
  ].join('')
}

function svgFrame(desktop: Desktop, minute: number): string {
  const time = new Date(START + minute * 60_000)
  const clock = `${String(time.getUTCHours()).padStart(2, '0')}:${String(time.getUTCMinutes()).padStart(2, '0')}`
  const open = desktop.windows.filter((w) => w.open)
  const graph = desktop.cpu.slice(-40).map((v, i) => `${W - 330 + i * 3},${H - 6 - v * 24}`)
  return [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}">`,
    '<defs><linearGradient id="sky" x1="0" y1="0" x2="1" y2="1"><stop offset="0" stop-color="#1d3557"/><stop offset="0.6" stop-color="#457b9d"/><stop offset="1" stop-color="#a8dadc"/></linearGradient></defs>',
    `<rect width="${W}" height="${H}" fill="url(#sky)"/>`,
    `<circle cx="1500" cy="300" r="260" fill="#f1faee" opacity="0.08"/><circle cx="300" cy="900" r="420" fill="#e63946" opacity="0.06"/>`,
    ...open.map((window, i) => svgWindow(desktop, window, i, i === open.length - 1)),
    `<rect y="${H - PANEL}" width="${W}" height="${PANEL}" fill="#20232a"/>`,
    ...open.map(
      (window, i) =>
        `<rect x="${60 + i * 210}" y="${H - PANEL + 4}" width="200" height="${PANEL - 8}" rx="4" fill="${i === open.length - 1 ? '#3b6ea5' : '#343842'}"/>` +
        `<text x="${70 + i * 210}" y="${H - 13}" font-family="${SANS.family}" font-size="13" fill="#eee">${xml(window.title.slice(0, 24))}</text>`,
    ),
    `<polyline points="${graph.join(' ')}" fill="none" stroke="#8fd18f" stroke-width="2"/>`,
    `<text x="${W - 150}" y="${H - 12}" font-family="${SANS.family}" font-size="14" fill="#fff">Mon 2 Jun  ${clock}</text>`,
    '</svg>',
  ].join('')
}

/** Renders the frames missing in `dir`/series, returning the series folder. */
export async function makeScreens(dir: string, { frames = 120, seed = 7 }: { frames?: number; seed?: number } = {}): Promise<string> {
  const series = join(dir, 'series')
  mkdirSync(series, { recursive: true })
  if (spawnSync('sh', ['-c', 'fc-list | grep -qi "DejaVu Sans Mono"']).status !== 0) {
    console.log('Installing fonts-dejavu-core (Debian) for the screenshots...')
    const install = spawnSync('apt-get', ['install', '-y', '-qq', 'fonts-dejavu-core'], { stdio: 'inherit' })
    if (install.status !== 0) throw new Error('apt-get install fonts-dejavu-core failed')
  }
  const next = random(seed)
  const desktop = initialDesktop(resolve('node_modules'))
  // Idle and active stretches with geometric lengths (medians 9 and 6 minutes).
  const stretch = (median: number) => 1 + Math.floor(Math.log(1 - next()) / Math.log(1 - Math.LN2 / median))
  let active = false
  let left = stretch(9)
  const started = performance.now()
  for (let minute = 0; minute < frames; minute++) {
    if (left-- <= 0) {
      active = !active
      left = stretch(active ? 6 : 9) - 1
    }
    if (active) act(desktop, next)
    desktop.cpu.push(active ? 0.3 + 0.7 * next() : 0.02 + 0.08 * next())
    const time = new Date(START + minute * 60_000).toISOString()
    const file = join(series, `${time.slice(0, 10)}_${time.slice(11, 16).replace(':', '-')}.png`)
    if (existsSync(file)) continue
    await sharp(Buffer.from(svgFrame(desktop, minute)))
      .png()
      .toFile(`${file}.partial`)
    renameSync(`${file}.partial`, file)
    if ((minute + 1) % 20 === 0) console.log(`  ${minute + 1}/${frames} frames (${((performance.now() - started) / 1000).toFixed(0)} s)`)
  }
  return series
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  const { values, positionals } = parseArgs({
    options: { frames: { type: 'string', default: '120' }, seed: { type: 'string', default: '7' } },
    allowPositionals: true,
  })
  const series = await makeScreens(resolve(positionals[0] ?? 'bench/data/screens'), {
    frames: Number(values.frames),
    seed: Number(values.seed),
  })
  console.log(`frames in ${series}`)
}
