import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { defineConfig } from 'vitest/config'

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    testTimeout: 60_000,
    hookTimeout: 60_000,
    // Two cores: more forks only thrash; native readers in child processes add their own load.
    maxWorkers: 2,
    // S3 stores cache blocks on local disk by default: tests (and the processes they start)
    // keep theirs out of the user's ~/.cache.
    env: { TESSERA_CACHE_DIR: process.env.TESSERA_CACHE_DIR ?? join(tmpdir(), `tessera-test-cache-${process.pid}`) },
  },
})
