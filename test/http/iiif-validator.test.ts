/**
 * The official IIIF Image API validator (github.com/IIIF/image-validator, vendored in
 * iiif-validator/ with its licence, see its README.md) run against a live server on 127.0.0.1:
 * every test of compliance level 2 for version 3.0, plus the level-3 tests of the features
 * info.json claims beyond level 2, must pass. It runs twice: with the image's CID as the
 * identifier, and with a dataset entry's URL-encoded name.
 *
 * The validator's test image is made here from the validator's own table of square colours
 * (ValidationInfo.colorInfo): 10 x 10 squares of 100 pixels, square (x, y) at column x, row y.
 * Python and the validator's Debian dependencies (python3-bottle, python3-magic, python3-lxml,
 * python3-pil) come from scripts/setup-debian.sh: without them the test is skipped locally
 * and fails on CI.
 */
import { execFile, execFileSync } from 'node:child_process'
import { mkdir, mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import type { FastifyInstance } from 'fastify'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { createServer } from '../../src/http/server.js'
import { type BlockStore, importDataset, importImage, openStore } from '../../src/index.js'
import { writePam } from '../helpers/oracle.js'
import { PYTHON } from '../helpers/readers.js'

const VALIDATOR = fileURLToPath(new URL('./iiif-validator/', import.meta.url))
/** Python leaves no __pycache__ in the vendored tree. */
const PYTHON_ENV = { ...process.env, PYTHONDONTWRITEBYTECODE: '1' }

/**
 * Level-3 tests of what info.json lists beyond level 2 (extraFormats tif, mirroring,
 * sizeUpscaling, the link headers). size_up asks for up to 2000 x 2000 pixels (`^pct:200`,
 * `^!2000,3000`, `^s,s` with s up to 2000), which is more than the maxArea info.json states for
 * this image under the default 48 MiB heavy-lane budget (about 1.4 Mpx: a rotated 2000 x 2000 WebP
 * needs some 120 MiB, spec/http.md §8), so these run against a server with a 256 MiB budget.
 */
const EXTRA_TESTS = ['format_tif', 'linkheader_canonical', 'linkheader_profile', 'rot_mirror', 'rot_mirror_180', 'size_up']
// Not run: format_webp (the validator compares bytes with a str on Python 3, so it fails for
// every server), format_gif/jp2/pdf and rot_*_non90 (not offered: info.json does not list them).

/** Why the validator cannot run here, or undefined when it can. */
function unavailable(): string | undefined {
  try {
    execFileSync(PYTHON, ['-c', 'import bottle, magic, lxml, PIL, iiif_validator.validator'], {
      cwd: VALIDATOR,
      env: PYTHON_ENV,
      stdio: 'pipe',
    })
    return undefined
  } catch (error) {
    const detail = String((error as { stderr?: Buffer }).stderr ?? error)
      .trim()
      .split('\n')
      .pop()
    return `${PYTHON} cannot import the validator's dependencies (${detail}); install them with scripts/setup-debian.sh (python3-bottle python3-magic python3-lxml python3-pil)`
  }
}

const missing = unavailable()
if (missing !== undefined && process.env.CI) throw new Error(`CI must run the IIIF validator: ${missing}`)
if (missing !== undefined) console.warn(`Skipping the IIIF validator: ${missing}`)

interface Run {
  readonly tests: number
  readonly failures: number
  readonly output: string
}

/** Runs iiif-validate.py; resolves whatever its exit code (the number of failures). */
function validate(server: string, identifier: string, args: readonly string[]): Promise<Run> {
  return new Promise((resolve, reject) => {
    execFile(
      PYTHON,
      ['iiif-validate.py', `--server=${server}`, '--prefix=iiif/3', `--identifier=${identifier}`, '--version=3.0', ...args],
      { cwd: VALIDATOR, env: PYTHON_ENV, timeout: 300_000, maxBuffer: 1 << 24 },
      (error, stdout, stderr) => {
        const output = `${stdout}${stderr}`
        const done = /Done \((\d+) tests, (\d+) failures\)/.exec(output)
        if (done === null) {
          reject(new Error(`The validator did not finish (${error?.message}):\n${output}`))
          return
        }
        resolve({ tests: Number(done[1]), failures: Number(done[2]), output })
      },
    )
  })
}

describe.skipIf(missing !== undefined)('the official IIIF Image API validator', () => {
  let dir: string
  let store: BlockStore
  let app: FastifyInstance
  let server: string
  /** The same store with a larger heavy-lane budget, for size_up (see EXTRA_TESTS). */
  let roomy: FastifyInstance
  let roomyServer: string
  let cid: string

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'tessera-iiif-validator-'))
    const colors = JSON.parse(
      execFileSync(
        PYTHON,
        ['-c', 'import json; from iiif_validator.validator import ValidationInfo; print(json.dumps(ValidationInfo().colorInfo))'],
        { cwd: VALIDATOR, env: PYTHON_ENV },
      )
        .toString()
        // Importing the validator's tests prints a line of its own first.
        .trim()
        .split('\n')
        .pop()!,
    ) as number[][][]
    const data = new Uint8Array(1000 * 1000 * 3)
    for (let y = 0; y < 1000; y++) {
      for (let x = 0; x < 1000; x++) data.set(colors[Math.floor(x / 100)]![Math.floor(y / 100)]!, (y * 1000 + x) * 3)
    }
    const path = join(dir, 'squares', 'squares.pam')
    await mkdir(join(dir, 'squares'))
    await writePam(path, { width: 1000, height: 1000, channels: 3, bits: 8, data })
    store = await openStore(join(dir, 'store'))
    cid = (await importImage(store, path, { pyramid: true, workers: 0 })).cid.toString()
    await importDataset(store, 'iiif-validator', [join(dir, 'squares')], { pyramid: true })
    app = await createServer({ store })
    server = new URL(await app.listen({ host: '127.0.0.1', port: 0 })).host
    roomy = await createServer({ store, limits: { heavyMemoryBudget: 256 * 2 ** 20 } })
    roomyServer = new URL(await roomy.listen({ host: '127.0.0.1', port: 0 })).host
  })
  afterAll(async () => {
    await app?.close()
    await roomy?.close()
    await store?.close()
    await rm(dir, { recursive: true, force: true })
  })

  for (const [what, identifier] of [
    ['the CID', () => cid],
    // A dataset entry's name, URL-encoded (§9: the slash is %2F); id_escaped also sends its - as %2D.
    ['a dataset entry by name', () => encodeURIComponent('iiif-validator/squares.pam')],
  ] as const) {
    it(`passes every level 2 test with ${what} as the identifier`, async () => {
      const run = await validate(server, identifier(), ['--level=2'])
      console.info(`iiif-validate.py --version=3.0 --level=2 (${what}): ${run.tests} tests, ${run.failures} failures`)
      expect(run.failures, run.output).toBe(0)
      // Every level 0, 1 and 2 test of version 3.0 ran.
      expect(run.tests, run.output).toBe(33)
    })

    it(`passes the level 3 tests of the features it claims, with ${what}`, async () => {
      const run = await validate(
        roomyServer,
        identifier(),
        EXTRA_TESTS.flatMap((test) => ['--test', test]),
      )
      console.info(
        `iiif-validate.py --version=3.0 ${EXTRA_TESTS.map((t) => `--test ${t}`).join(' ')} (${what}): ${run.tests} tests, ${run.failures} failures`,
      )
      expect(run.failures, run.output).toBe(0)
      expect(run.tests, run.output).toBe(EXTRA_TESTS.length)
    })
  }
})
