/**
 * The rules of the house, read from the real import graph of src/ (README "How it works",
 * issue 8): imports flow one way,
 *   errors, temp, version, peak-rss <- format, codecs, threads <- store <- crop | import <- image facade
 *          <- dataset, car, sample, stream <- public API (index.ts) <- http | cli;
 * siblings marked | never import each other; http and cli go through the facade (one door at
 * the edges: they import behaviour from image.ts, errors.ts and the layer just under them, and
 * only types from lower); each native or driver dependency has exactly one home.
 *
 * The graph is parsed with TypeScript's own parser, so every form counts: `import`/`export ...
 * from`, `import type`, `import('...')` (calls and type positions), `require('...')` (through
 * createRequire) and worker URLs (`new URL('./x.js', import.meta.url)`); text that only looks
 * like an import (inside a string or a comment) does not.
 */
import { readdirSync, readFileSync, statSync } from 'node:fs'
import { dirname, join, relative, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import ts from 'typescript'
import { describe, expect, it } from 'vitest'

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..')

/**
 * The layers, lowest first. A module is in the layer of the longest prefix matching its path;
 * it may import its own layer and those below. In an `isolated` layer, modules under
 * different prefixes may not import each other.
 */
const LAYERS: ReadonlyArray<{ readonly name: string; readonly prefixes: readonly string[]; readonly isolated?: boolean }> = [
  { name: 'errors', prefixes: ['src/errors.ts', 'src/temp.ts', 'src/version.ts', 'src/peak-rss.ts'] },
  { name: 'format', prefixes: ['src/format/', 'src/codecs/', 'src/threads.ts'], isolated: true },
  { name: 'store', prefixes: ['src/store/'] },
  { name: 'crop / import', prefixes: ['src/crop/', 'src/import/'], isolated: true },
  { name: 'image facade', prefixes: ['src/image.ts'] },
  { name: 'dataset / car / sample', prefixes: ['src/dataset/', 'src/car/', 'src/sample.ts', 'src/stream/'] },
  { name: 'public API', prefixes: ['src/index.ts'] },
  { name: 'http / cli', prefixes: ['src/http/', 'src/cli/'], isolated: true },
]

/** The edges: what they may import behaviour from, outside their own folder. */
const EDGES = ['src/http/', 'src/cli/']
const EDGE_DOORS = [
  'src/errors.ts',
  'src/temp.ts',
  'src/version.ts',
  'src/peak-rss.ts',
  'src/image.ts',
  'src/dataset/',
  'src/car/',
  'src/sample.ts',
  'src/stream/',
  'src/index.ts',
]

/** Deliberate exceptions, each with its reason. */
const ALLOWED: ReadonlyArray<{ readonly from: string; readonly to: string; readonly why: string }> = [
  { from: 'src/cli/serve.ts', to: 'src/http/server.ts', why: '`tessera serve` starts the server through its one entry point' },
  // Read when the CLI builds its command line, before any command runs: loading the facade
  // there would cost every command its start-up time.
  { from: 'src/cli/import.ts', to: 'src/import/options.ts', why: 'the import options table (defaults in --help), pure data' },
  { from: 'src/cli/output.ts', to: 'src/store/location.ts', why: 'the default store location, resolved before the store is opened' },
  {
    from: 'src/cli/crop.ts',
    to: 'src/crop/writers/formats.ts',
    why: "the output formats table, to name an output's format: a stream crop would otherwise load the facade for it (9 ms)",
  },
]

/**
 * Native and driver dependencies (package name patterns): who may import them, and how many
 * files. `exactly` when the package is in use today, `atMost` for one that may arrive.
 */
const HOMES: ReadonlyArray<{
  readonly what: string
  readonly packages: RegExp
  readonly under?: string
  readonly exactly?: number
  readonly atMost?: number
}> = [
  { what: 'sharp (libvips)', packages: /^sharp$/, exactly: 1 },
  { what: 'LevelDB (level, classic-level)', packages: /^(level|classic-level)$/, under: 'src/store/', exactly: 1 },
  { what: 'zstd-napi', packages: /^zstd-napi$/, exactly: 1 },
  { what: 'the S3 SDK (@aws-sdk/*, @smithy/*)', packages: /^@(aws-sdk|smithy)\//, under: 'src/store/objects/', exactly: 1 },
  { what: 'the SigV4 signer of S3 reads (aws4)', packages: /^aws4$/, under: 'src/store/objects/', exactly: 1 },
  { what: 'fastify (and @fastify/*)', packages: /^(fastify|@fastify\/.*)$/, under: 'src/http/' },
]

interface Edge {
  /** Importing file, relative to the repository (src/...). */
  readonly from: string
  /** A src/ file for a relative import (src/...), else the package name. */
  readonly to: string
  readonly line: number
  /** `import type`, `export type`, or `import('...')` in a type position: no code runs. */
  readonly typeOnly: boolean
}

function sourceFiles(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name)
    if (statSync(path).isDirectory()) return sourceFiles(path)
    return name.endsWith('.ts') && !name.endsWith('.d.ts') ? [path] : []
  })
}

/** `@scope/name/sub` -> `@scope/name`, `name/sub` -> `name`. */
function packageName(specifier: string): string {
  const parts = specifier.split('/')
  return specifier.startsWith('@') ? parts.slice(0, 2).join('/') : parts[0]!
}

/** Every import of one file, resolved. Relative imports of non-TypeScript files (JSON) are left out. */
function importsOf(path: string): Edge[] {
  const from = relative(root, path)
  const source = ts.createSourceFile(path, readFileSync(path, 'utf8'), ts.ScriptTarget.Latest, true)
  const edges: Edge[] = []
  const add = (specifier: ts.Expression | ts.TypeNode | undefined, typeOnly: boolean) => {
    let text: string | undefined
    if (specifier !== undefined && ts.isStringLiteralLike(specifier)) text = specifier.text
    else if (specifier !== undefined && ts.isLiteralTypeNode(specifier) && ts.isStringLiteral(specifier.literal))
      text = specifier.literal.text
    if (text === undefined) return
    const line = source.getLineAndCharacterOfPosition(specifier!.getStart()).line + 1
    if (text.startsWith('node:')) return
    if (!text.startsWith('.')) return void edges.push({ from, to: packageName(text), line, typeOnly })
    const target = resolve(dirname(path), text).replace(/\.js$/, '.ts')
    if (target.endsWith('.ts')) edges.push({ from, to: relative(root, target), line, typeOnly })
  }
  const visit = (node: ts.Node) => {
    if (ts.isImportDeclaration(node)) add(node.moduleSpecifier, node.importClause?.isTypeOnly === true)
    else if (ts.isExportDeclaration(node)) add(node.moduleSpecifier, node.isTypeOnly)
    else if (ts.isImportTypeNode(node)) add(node.argument, true)
    else if (ts.isCallExpression(node)) {
      const callee = node.expression
      if (callee.kind === ts.SyntaxKind.ImportKeyword || (ts.isIdentifier(callee) && callee.text === 'require'))
        add(node.arguments[0], false)
    } else if (ts.isNewExpression(node) && ts.isIdentifier(node.expression) && node.expression.text === 'URL') {
      // A worker module: new URL('./decode-worker.js', import.meta.url).
      const [first, second] = node.arguments ?? []
      if (
        first !== undefined &&
        second !== undefined &&
        ts.isStringLiteralLike(first) &&
        first.text.startsWith('.') &&
        second.getText() === 'import.meta.url'
      ) {
        add(first, false)
      }
    }
    ts.forEachChild(node, visit)
  }
  visit(source)
  return edges
}

const files = sourceFiles(join(root, 'src')).map((path) => relative(root, path))
const edges = files.flatMap((file) => importsOf(join(root, file)))
const internal = edges.filter((edge) => edge.to.startsWith('src/'))
const external = edges.filter((edge) => !edge.to.startsWith('src/'))

/** The layer index and the matching prefix of a src/ path, or undefined when no layer claims it. */
function placeOf(path: string): { layer: number; prefix: string } | undefined {
  let best: { layer: number; prefix: string } | undefined
  LAYERS.forEach(({ prefixes }, layer) => {
    for (const prefix of prefixes) {
      const matches = prefix.endsWith('/') ? path.startsWith(prefix) : path === prefix
      if (matches && (best === undefined || prefix.length > best.prefix.length)) best = { layer, prefix }
    }
  })
  return best
}

const show = (edge: Edge, rule: string) => `${edge.from}:${edge.line} -> ${edge.to}${edge.typeOnly ? ' (type)' : ''}: ${rule}`
const allowed = (edge: Edge) => ALLOWED.some((exception) => exception.from === edge.from && exception.to === edge.to)

describe('architecture', () => {
  it('reads the import graph', () => {
    // A parser that finds nothing would pass every rule below.
    expect(files.length).toBeGreaterThan(50)
    expect(internal.length).toBeGreaterThan(200)
    expect(external.some((edge) => edge.to === 'sharp')).toBe(true)
    for (const edge of internal) expect(files, `${edge.from}:${edge.line} imports a missing file`).toContain(edge.to)
  })

  it('places every module of src/ in a layer', () => {
    const unplaced = files.filter((file) => placeOf(file) === undefined)
    expect(unplaced, 'add these folders or files to LAYERS in test/architecture.test.ts').toEqual([])
  })

  it('imports flow one way: nothing imports a layer above its own', () => {
    const violations: string[] = []
    for (const edge of internal) {
      const from = placeOf(edge.from)
      const to = placeOf(edge.to)
      if (from === undefined || to === undefined || allowed(edge)) continue
      if (to.layer > from.layer) {
        violations.push(show(edge, `${LAYERS[from.layer]!.name} must not import ${LAYERS[to.layer]!.name} (upward)`))
      } else if (to.layer === from.layer && LAYERS[from.layer]!.isolated && to.prefix !== from.prefix) {
        violations.push(show(edge, `${from.prefix} and ${to.prefix} are siblings: neither imports the other`))
      }
    }
    expect(violations).toEqual([])
  })

  it('http and cli go through the facade (types may come from lower)', () => {
    const violations: string[] = []
    for (const edge of internal) {
      const edgeFolder = EDGES.find((prefix) => edge.from.startsWith(prefix))
      if (edgeFolder === undefined || edge.typeOnly || edge.to.startsWith(edgeFolder) || allowed(edge)) continue
      if (EDGES.some((prefix) => edge.to.startsWith(prefix))) continue // the sibling rule reports it
      const door = EDGE_DOORS.some((prefix) => (prefix.endsWith('/') ? edge.to.startsWith(prefix) : edge.to === prefix))
      if (!door) violations.push(show(edge, `${edgeFolder} reaches around the facade (use or extend src/image.ts)`))
    }
    expect(violations).toEqual([])
  })

  it('each native or driver dependency has one home', () => {
    const violations: string[] = []
    for (const { what, packages, under, exactly, atMost } of HOMES) {
      const uses = external.filter((edge) => !edge.typeOnly && packages.test(edge.to))
      const importers = [...new Set(uses.map((edge) => edge.from))]
      for (const edge of uses)
        if (under !== undefined && !edge.from.startsWith(under)) violations.push(show(edge, `${what} is imported only under ${under}`))
      const limit = exactly ?? atMost
      if (limit !== undefined && importers.length > limit)
        violations.push(`${what} is imported by ${importers.length} files, at most ${limit}: ${importers.join(', ')}`)
      if (exactly !== undefined && importers.length < exactly)
        violations.push(`${what} is imported by ${importers.length} files, expected ${exactly}`)
    }
    expect(violations).toEqual([])
  })
})
