/**
 * The benchmark image, made from nothing outside the repository: a 29566x14321 8-bit RGB
 * mosaic (the pixel size of ESA's heic0707a.tif, 1.27 GB of samples) of real photographs
 * from Debian packages (Ubuntu wallpaper-contest photos in lomiri-wallpapers-16.04/-20.04, MATE's
 * nature photos in mate-backgrounds), so that it compresses like photographs, not like noise
 * or flat art. Writes, into DIR (default bench/data, git-ignored):
 *   big.ppm                 the pixels (binary PPM)
 *   big.png                 all PNG filters, as typical PNG writers do
 *   big.jpg                 quality 90
 *   big-tiled-deflate.tif   256x256 tiles, horizontal predictor (BigTIFF)
 *   big-tiled-zstd.tif      the same with zstd
 *   big-pieces.tsv          where each piece of the mosaic comes from (credits, debugging)
 * Shelf layout: bands of random heights, each filled left to right with crops of the photos,
 * each crop from a randomly rotated or mirrored copy of its photo, downscaled by a random
 * factor in [0.7, 1] (never upscaled), so no two pieces share pixels and a content-addressed
 * store gets no free deduplication. Deterministic for a seed, the Debian package versions
 * (bookworm) and sharp's version (package-lock.json). The conversions use Debian's libvips
 * command line (`vips`, package libvips-tools), which writes zstd TIFF where sharp cannot.
 * Needs apt (packages are fetched with `apt-get download`, and libvips-tools is installed if
 * `vips` is missing: run as root, or install it first). 5-15 minutes on two cores, ~2.7 GB.
 * Re-runnable: finished outputs are kept, every output appears whole (written, then renamed).
 *
 *   node --import tsx bench/make-image.ts [DIR] [--seed 1]
 */
import { spawnSync } from 'node:child_process'
import { closeSync, existsSync, mkdirSync, openSync, readdirSync, renameSync, statSync, writeFileSync, writeSync } from 'node:fs'
import { join, resolve } from 'node:path'
import { pathToFileURL } from 'node:url'
import { parseArgs } from 'node:util'
import sharp from 'sharp'
import { random } from './lib.js'

export const WIDTH = 29566
export const HEIGHT = 14321

/** The Debian packages the photographs come from. */
const PACKAGES = ['lomiri-wallpapers-16.04', 'lomiri-wallpapers-20.04', 'mate-backgrounds']

/** The photographs (paths under usr/share/backgrounds/ in those packages); their art is left out. */
const PHOTOS = [
  'Bridge_by_Sander_Klootwijk.jpg',
  'Dragonfly_by_Bolly.jpg',
  'Kleiber_by_Lukas_Baubkus.jpg',
  'Picture_0B_by_freespace.jpg',
  'Picture_1A_by_freespace.jpg',
  'Wine_by_Jakkub_Mede.jpg',
  'aitzgorri_by_Aitzol_Berasategi.jpg',
  'analogpattern_by_Peter_Nerlich.jpg',
  'free_by_Peter_Nerlich.jpg',
  'friends_by_Aitzol_Berasategi.jpg',
  'greentock_by_Peter_Nerlich.jpg',
  'life_by_Aitzol_Berasategi.jpg',
  'picosdeeuropa_by_Aitzol_Berasategi.jpg',
  'seeding_by_Clements_Engelhardt.jpg',
  'sunset_by_Aitzol_Berasategi.jpg',
  ...[
    'Aqua',
    'Blinds',
    'Dune',
    'FreshFlower',
    'Garden',
    'GreenMeadow',
    'LadyBird',
    'RainDrops',
    'Storm',
    'TwoWings',
    'Wood',
    'YellowFlower',
  ].map((name) => `mate/nature/${name}.jpg`),
]

/** The outputs after big.ppm, each with the `vips` command line that makes it from big.ppm. */
const CONVERSIONS: ReadonlyArray<readonly [string, readonly string[]]> = [
  ['big.png', ['pngsave', '--filter', 'all']],
  ['big.jpg', ['jpegsave', '--Q', '90']],
  ...(['deflate', 'zstd'] as const).map(
    (compression) =>
      [
        `big-tiled-${compression}.tif`,
        [
          'tiffsave',
          '--tile',
          '--tile-width',
          '256',
          '--tile-height',
          '256',
          '--compression',
          compression,
          '--predictor',
          'horizontal',
          '--bigtiff',
        ],
      ] as const,
  ),
]

/** Band heights are drawn from this range (the last band takes what is left). */
const BAND = { min: 1000, max: 2200 }
/** The eight orientations: sharp rotation (degrees), then a horizontal mirror or not. */
const ORIENTATIONS = [0, 90, 180, 270].flatMap((angle) => [false, true].map((mirror) => ({ angle, mirror })))

/** What `run` prints and fails on: a command that must succeed. */
function run(command: string, args: readonly string[], options: { cwd?: string } = {}): void {
  const result = spawnSync(command, args, { stdio: 'inherit', ...options })
  if (result.status !== 0) throw new Error(`${command} ${args.join(' ')} failed (${result.error?.message ?? `exit ${result.status}`})`)
}

const has = (command: string) => spawnSync('sh', ['-c', `command -v ${command}`], { stdio: 'ignore' }).status === 0

/** Every output of the benchmark image is in `dir`. */
export function benchImageReady(dir: string): boolean {
  return ['big.ppm', ...CONVERSIONS.map(([name]) => name)].every((name) => existsSync(join(dir, name)))
}

/** Builds whatever part of the benchmark image is missing in `dir`. */
export async function makeBenchImage(dir: string, { seed = 1 }: { seed?: number } = {}): Promise<void> {
  mkdirSync(dir, { recursive: true })
  const ppm = join(dir, 'big.ppm')
  if (!existsSync(ppm)) {
    const photos = fetchPhotos(join(dir, 'photos'))
    await writeMosaic(ppm, photos, seed)
  }
  if (!has('vips')) {
    console.log('Installing libvips-tools (Debian) for the vips command...')
    run('apt-get', ['install', '-y', '-qq', 'libvips-tools'])
  }
  for (const [name, [operation, ...options]] of CONVERSIONS) {
    const out = join(dir, name)
    if (existsSync(out)) continue
    console.log(`vips ${operation} -> ${name} ...`)
    const started = performance.now()
    // vips picks the format by the operation, not the suffix: a partial file keeps its own name.
    run('vips', [operation!, ppm, `${out}.partial`, ...options])
    renameSync(`${out}.partial`, out)
    console.log(`  ${name}: ${(statSync(out).size / 2 ** 20).toFixed(1)} MiB in ${((performance.now() - started) / 1000).toFixed(0)} s`)
  }
}

/** Downloads and unpacks the packages (once), returning the photos' paths in PHOTOS order. */
function fetchPhotos(dir: string): string[] {
  const root = join(dir, 'root')
  const paths = PHOTOS.map((name) => join(root, 'usr/share/backgrounds', name))
  if (paths.every((path) => existsSync(path))) return paths
  const debs = join(dir, 'debs')
  mkdirSync(debs, { recursive: true })
  const missing = () => PACKAGES.filter((name) => !readdirSync(debs).some((file) => file.startsWith(`${name}_`)))
  if (missing().length > 0) {
    console.log(`Downloading ${missing().join(', ')} (Debian packages, ~30 MB)...`)
    // apt-get download needs the package lists: refresh them once if it fails.
    const download = () => spawnSync('apt-get', ['download', '-q', ...missing()], { cwd: debs, stdio: 'inherit' }).status === 0
    if (!download()) {
      run('apt-get', ['update', '-qq'])
      if (!download()) throw new Error(`apt-get download ${missing().join(' ')} failed`)
    }
  }
  for (const file of readdirSync(debs).filter((file) => file.endsWith('.deb'))) run('dpkg-deb', ['-x', join(debs, file), root])
  const absent = paths.filter((path) => !existsSync(path))
  if (absent.length > 0) throw new Error(`Not in ${PACKAGES.join(', ')}: ${absent.join(', ')}`)
  return paths
}

interface Piece {
  readonly photo: string
  readonly angle: number
  readonly mirror: boolean
  readonly scale: number
  /** Where the piece is taken from, in the rotated and scaled photo. */
  readonly sx: number
  readonly sy: number
  /** Where it goes in the mosaic. */
  readonly x: number
  readonly y: number
  readonly width: number
  readonly height: number
}

/** The photo rotated, mirrored and scaled, as interleaved RGB samples. */
async function variant(photo: string, angle: number, mirror: boolean, scale: number) {
  let image = sharp(photo, { limitInputPixels: false }).rotate(angle)
  if (mirror) image = image.flop()
  const { width, height } = await sharp(photo).metadata()
  const [w, h] = angle % 180 === 0 ? [width!, height!] : [height!, width!]
  if (scale < 1) image = image.resize(Math.round(w * scale), Math.round(h * scale), { kernel: 'lanczos3' })
  const { data, info } = await image.removeAlpha().toColourspace('srgb').raw().toBuffer({ resolveWithObject: true })
  if (info.channels !== 3) throw new Error(`${photo}: ${info.channels} channels after conversion`)
  return { data, width: info.width, height: info.height }
}

/** Draws the mosaic band by band and writes it as a binary PPM (memory: one band). */
async function writeMosaic(out: string, photos: readonly string[], seed: number): Promise<void> {
  const started = performance.now()
  const next = random(seed)
  const pick = (n: number) => Math.floor(next() * n)
  // Photos in shuffled rounds, so each is used about as often as the others.
  let round: string[] = []
  const nextPhoto = () => {
    if (round.length === 0) {
      round = [...photos]
      for (let i = round.length - 1; i > 0; i--) {
        const j = pick(i + 1)
        ;[round[i], round[j]] = [round[j]!, round[i]!]
      }
    }
    return round.pop()!
  }
  const fd = openSync(`${out}.partial`, 'w')
  writeSync(fd, `P6\n${WIDTH} ${HEIGHT}\n255\n`)
  const pieces: Piece[] = []
  for (let y = 0; y < HEIGHT; ) {
    let height = BAND.min + pick(BAND.max - BAND.min + 1)
    if (HEIGHT - y - height < BAND.min) height = HEIGHT - y
    const band = Buffer.alloc(WIDTH * height * 3)
    for (let x = 0; x < WIDTH; ) {
      const photo = nextPhoto()
      const { angle, mirror } = ORIENTATIONS[pick(ORIENTATIONS.length)]!
      // Downscaled by 0.7-1 unless that makes it shorter than the band; never upscaled.
      const { width: w0, height: h0 } = await sharp(photo).metadata()
      const tall = angle % 180 === 0 ? h0! : w0!
      if (tall < height) continue // too short for this band: the next photo
      const scale = Math.max(height / tall, 0.7 + 0.3 * next())
      const source = await variant(photo, angle, mirror, scale)
      if (source.height < height) continue // rounding
      // Most of the photo's width, or what is left of the band.
      let width = Math.min(WIDTH - x, Math.round(source.width * (0.6 + 0.4 * next())))
      if (WIDTH - x - width < 400) width = Math.min(WIDTH - x, source.width)
      const piece = {
        photo,
        angle,
        mirror,
        scale,
        sx: pick(source.width - width + 1),
        sy: pick(source.height - height + 1),
        x,
        y,
        width,
        height,
      }
      for (let row = 0; row < height; row++) {
        const from = ((piece.sy + row) * source.width + piece.sx) * 3
        source.data.copy(band, (row * WIDTH + x) * 3, from, from + width * 3)
      }
      pieces.push(piece)
      x += width
    }
    writeSync(fd, band)
    y += height
    process.stdout.write(`\rmosaic: ${y}/${HEIGHT} rows, ${pieces.length} pieces`)
  }
  closeSync(fd)
  renameSync(`${out}.partial`, out)
  const tsv = pieces.map((p) =>
    [p.x, p.y, p.width, p.height, p.photo.replace(/.*\/backgrounds\//, ''), p.angle, p.mirror, p.scale.toFixed(4), p.sx, p.sy].join('\t'),
  )
  writeFileSync(join(out, '..', 'big-pieces.tsv'), `x\ty\twidth\theight\tphoto\tangle\tmirror\tscale\tsx\tsy\n${tsv.join('\n')}\n`)
  console.log(
    `\n${out}: ${WIDTH}x${HEIGHT}, ${pieces.length} pieces of ${photos.length} photos, ${((performance.now() - started) / 1000).toFixed(0)} s`,
  )
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  const { values, positionals } = parseArgs({ options: { seed: { type: 'string', default: '1' } }, allowPositionals: true })
  const dir = resolve(positionals[0] ?? 'bench/data')
  const started = performance.now()
  await makeBenchImage(dir, { seed: Number(values.seed) })
  console.log(`benchmark image ready in ${dir} (${((performance.now() - started) / 60000).toFixed(1)} min)`)
}
