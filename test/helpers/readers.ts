/**
 * Independent real readers for checking what Tessera writes: Debian's python3 (numpy, PIL,
 * tifffile, GDAL's osgeo) and the vips CLI. Each returns the decoded pixels in Tessera's own
 * layout (interleaved, 16-bit little-endian) so tests compare bytes directly.
 *
 * Python readers run in ONE process per `readAll` call: starting python and importing numpy,
 * tifffile and GDAL costs about half a second, reading a small image a millisecond.
 * The interpreter is /usr/bin/python3 on purpose: the `python3` on PATH may be a separate
 * build without Debian's python3-numpy, python3-pil, python3-tifffile, python3-zstandard and
 * python3-gdal. vips comes from Debian's libvips-tools.
 */
import { execFile } from 'node:child_process'
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { promisify } from 'node:util'

const run = promisify(execFile)

/** Path of the python with Debian's imaging packages. */
export const PYTHON = '/usr/bin/python3'

/** Pixels as a reader decoded them, in Tessera's layout. */
export interface DecodedImage {
  readonly width: number
  readonly height: number
  readonly channels: number
  readonly bitsPerSample: 8 | 16
  /** Interleaved samples, rows top to bottom, 16-bit little-endian. */
  readonly data: Uint8Array
  /** Reader-specific facts about the file (tifffile: bigtiff, compression, predictor, tile). */
  readonly info: Record<string, unknown>
}

/**
 * numpy: numpy.load; tifffile: tifffile with a zstandard shim for zstd tiles; pil: Pillow
 * (8-bit, and 16-bit gray only: Pillow reduces 16-bit colour to 8 bits); gdal: osgeo.gdal;
 * netpbm: a small numpy parser of P5/P6/P7 written independently of the writer (PAM
 * has no other reader here but vips' ImageMagick loader).
 */
export type PythonReader = 'numpy' | 'tifffile' | 'pil' | 'gdal' | 'netpbm'

/** One file to decode with one reader. */
export interface ReadJob {
  readonly reader: PythonReader | 'vips'
  readonly path: string
}

const SCRIPT = String.raw`
import json, sys
import numpy as np

def read_numpy(path):
    arr = np.load(path, allow_pickle=False)
    if arr.ndim != 3: raise ValueError(f'expected 3 dimensions, got shape {arr.shape}')
    return arr, {'shape': list(arr.shape), 'dtype': arr.dtype.str, 'fortran': bool(np.isfortran(arr))}

def read_tifffile(path):
    import tifffile, zstandard
    # Debian's tifffile has no imagecodecs; its decompressor table caches one function per
    # Compression value, so put a zstandard one in for 50000 (libtiff's COMPRESSION_ZSTD).
    codecs = tifffile.TIFF.DECOMPRESSORS
    if 50000 not in codecs._codecs:
        # A streaming decompressor: libtiff-style frames do not record their content size.
        codecs._codecs[50000] = lambda data, out=None: zstandard.ZstdDecompressor().decompressobj().decompress(data)
    with tifffile.TiffFile(path) as tif:
        page = tif.pages[0]
        arr = page.asarray()
        info = {'bigtiff': tif.is_bigtiff, 'compression': int(page.compression), 'predictor': int(page.predictor),
                'tile': list(page.tile) if page.is_tiled else None, 'photometric': int(page.photometric),
                'extrasamples': [int(x) for x in page.extrasamples],
                'icc': page.tags[34675].value.hex() if 34675 in page.tags else None}
    return arr, info

def read_pil(path):
    from PIL import Image
    with Image.open(path) as im:
        info = {'mode': im.mode, 'format': im.format, 'icc': im.info['icc_profile'].hex() if im.info.get('icc_profile') else None}
        arr = np.asarray(im)
        if im.mode in ('I', 'I;16', 'I;16B'): arr = arr.astype(np.uint16)
    return arr, info

def read_gdal(path):
    from osgeo import gdal
    gdal.UseExceptions()
    ds = gdal.Open(path)
    arr = ds.ReadAsArray()
    info = {'driver': ds.GetDriver().ShortName, 'bands': ds.RasterCount,
            'compression': ds.GetMetadataItem('COMPRESSION', 'IMAGE_STRUCTURE')}
    if arr.ndim == 3: arr = np.moveaxis(arr, 0, -1)
    return arr, info

def read_netpbm(path):
    data = open(path, 'rb').read()
    fields, pos = {}, 0
    def token():
        nonlocal pos
        while data[pos:pos+1].isspace() or data[pos:pos+1] == b'#':
            if data[pos:pos+1] == b'#':
                pos = data.index(b'\n', pos)
            pos += 1
        start = pos
        while not data[pos:pos+1].isspace(): pos += 1
        return data[start:pos].decode()
    magic = token()
    if magic in ('P5', 'P6'):
        w, h, maxval = int(token()), int(token()), int(token())
        depth = 1 if magic == 'P5' else 3
        pos += 1  # exactly one whitespace byte before the raster
    elif magic == 'P7':
        while True:
            line_end = data.index(b'\n', pos)
            line = data[pos:line_end].decode().strip()
            pos = line_end + 1
            if line == 'ENDHDR': break
            if line and not line.startswith('#'):
                key, _, value = line.partition(' ')
                fields[key] = value.strip()
        w, h, depth, maxval = (int(fields[k]) for k in ('WIDTH', 'HEIGHT', 'DEPTH', 'MAXVAL'))
    else:
        raise ValueError(f'not a P5/P6/P7 file: {magic}')
    dtype = np.dtype('u1') if maxval < 256 else np.dtype('>u2')
    size = w * h * depth * dtype.itemsize
    if len(data) - pos != size: raise ValueError(f'expected {size} raster bytes, found {len(data) - pos}')
    arr = np.frombuffer(data, dtype, w * h * depth, pos).reshape(h, w, depth)
    return arr, {'magic': magic, 'maxval': maxval, 'tupltype': fields.get('TUPLTYPE')}

READERS = {'numpy': read_numpy, 'tifffile': read_tifffile, 'pil': read_pil, 'gdal': read_gdal, 'netpbm': read_netpbm}

jobs = json.load(open(sys.argv[1]))
for i, job in enumerate(jobs):
    try:
        arr, info = READERS[job['reader']](job['path'])
        if arr.ndim == 2: arr = arr[:, :, None]
        if arr.dtype.kind != 'u' or arr.dtype.itemsize not in (1, 2): raise ValueError(f'unexpected dtype {arr.dtype}')
        arr.astype(arr.dtype.newbyteorder('<'), copy=False).tofile(job['out'])
        h, w, c = arr.shape
        print(json.dumps({'width': w, 'height': h, 'channels': c, 'bitsPerSample': arr.dtype.itemsize * 8, 'info': info}))
    except Exception as e:
        print(json.dumps({'error': f'{type(e).__name__}: {e}'}))
    sys.stdout.flush()
`

/**
 * Decodes every job, python jobs in one process and vips jobs two at a time; throws if any
 * reader fails, naming the file and reader.
 */
export async function readAll(jobs: readonly ReadJob[]): Promise<DecodedImage[]> {
  const dir = await mkdtemp(join(tmpdir(), 'tessera-readers-'))
  try {
    const results = new Array<DecodedImage>(jobs.length)
    const python = jobs.flatMap((job, i) => (job.reader === 'vips' ? [] : [{ ...job, index: i, out: join(dir, `${i}.bin`) }]))
    const vips = jobs.flatMap((job, i) => (job.reader === 'vips' ? [{ ...job, index: i }] : []))
    const pythonDone = (async () => {
      if (python.length === 0) return
      const jobsFile = join(dir, 'jobs.json')
      await writeFile(jobsFile, JSON.stringify(python))
      await writeFile(join(dir, 'read.py'), SCRIPT)
      const { stdout } = await run(PYTHON, [join(dir, 'read.py'), jobsFile], { maxBuffer: 64 << 20 })
      const lines = stdout.trim().split('\n')
      for (const [k, job] of python.entries()) {
        const meta = JSON.parse(lines[k] ?? '{"error":"no output"}')
        if (meta.error) throw new Error(`${job.reader} could not read ${job.path}: ${meta.error}`)
        results[job.index] = { ...meta, data: new Uint8Array(await readFile(job.out)) }
      }
    })()
    const vipsDone = (async () => {
      let next = 0
      const worker = async () => {
        while (next < vips.length) {
          const job = vips[next++]!
          results[job.index] = await vipsRead(job.path, join(dir, `${job.index}.v`))
        }
      }
      await Promise.all([worker(), worker()])
    })()
    // Settle both before the finally removes their directory, then report the first failure.
    const settled = await Promise.allSettled([pythonDone, vipsDone])
    for (const outcome of settled) if (outcome.status === 'rejected') throw outcome.reason
    return results
  } finally {
    await rm(dir, { recursive: true, force: true })
  }
}

/** Decodes with `vips copy` to a .v file and parses its 64-byte header (libvips' vips.c, the native format). */
async function vipsRead(path: string, out: string): Promise<DecodedImage> {
  try {
    await run('vips', ['copy', path, out])
  } catch (cause) {
    throw new Error(`vips could not read ${path}: ${(cause as { stderr?: string }).stderr ?? cause}`)
  }
  const file = new Uint8Array(await readFile(out))
  const view = new DataView(file.buffer, file.byteOffset, file.byteLength)
  // Magic 0xb6a6f208 (written big-endian) marks a file whose header and pixels are little-endian.
  if (view.getUint32(0) !== 0xb6a6f208) throw new Error(`${out} is not a little-endian vips file`)
  const width = view.getInt32(4, true)
  const height = view.getInt32(8, true)
  const channels = view.getInt32(12, true)
  const bandFormat = view.getInt32(20, true) // VipsBandFormat: 0 uchar, 2 ushort
  if (bandFormat !== 0 && bandFormat !== 2) throw new Error(`vips decoded ${path} to band format ${bandFormat}`)
  const bitsPerSample = bandFormat === 0 ? 8 : 16
  const size = width * height * channels * (bitsPerSample / 8)
  return { width, height, channels, bitsPerSample, data: file.slice(64, 64 + size), info: { bandFormat } }
}

/** Reads a TIFF with tifffile (zstd through python3-zstandard). */
export async function readWithTifffile(path: string): Promise<DecodedImage> {
  return (await readAll([{ reader: 'tifffile', path }]))[0]!
}

/** Reads any format vips loads (TIFF, PNG, PNM; PAM through its ImageMagick loader). */
export async function readWithVips(path: string): Promise<DecodedImage> {
  return (await readAll([{ reader: 'vips', path }]))[0]!
}

/** Reads a TIFF or PNG with GDAL's python bindings. */
export async function readWithGdal(path: string): Promise<DecodedImage> {
  return (await readAll([{ reader: 'gdal', path }]))[0]!
}

/** Reads a .npy with numpy.load; the array must have 3 dimensions. */
export async function readWithNumpy(path: string): Promise<DecodedImage> {
  return (await readAll([{ reader: 'numpy', path }]))[0]!
}

/** Reads an 8-bit image (or 16-bit gray) with Pillow. */
export async function readWithPil(path: string): Promise<DecodedImage> {
  return (await readAll([{ reader: 'pil', path }]))[0]!
}

/** Reads P5, P6 or P7 with an independent numpy parser. */
export async function readWithNetpbm(path: string): Promise<DecodedImage> {
  return (await readAll([{ reader: 'netpbm', path }]))[0]!
}
