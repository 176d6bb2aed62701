// Bundles the CLI and its worker threads into dist/bundle/ (run by `npm run build`).
// Why: a crop is a whole process, and resolving and compiling ~60 small modules costs a
// CLI run more than the crop itself; one bundle with lazily loaded chunks (the importer,
// sharp) starts faster. Native packages stay external: they load their own binaries.
import { build } from 'esbuild'

await build({
  entryPoints: {
    main: 'src/cli/main.ts',
    'compress-worker': 'src/import/compress-worker.ts',
    'decode-worker': 'src/crop/decode-worker.ts',
    'deflate-worker': 'src/crop/writers/deflate-worker.ts',
  },
  outdir: 'dist/bundle',
  bundle: true,
  splitting: true,
  format: 'esm',
  platform: 'node',
  target: 'node20',
  external: ['sharp', 'level', 'zstd-napi'],
  // Bundled CommonJS dependencies (commander) call require(): give them one.
  banner: { js: "import { createRequire as __tesseraRequire } from 'node:module'; const require = __tesseraRequire(import.meta.url);" },
  logLevel: 'warning',
})
