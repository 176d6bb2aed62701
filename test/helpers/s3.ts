/**
 * The real S3 server for tests (a one-node Ceph radosgw on loopback: scripts/s3-up.sh prints
 * TESSERA_TEST_S3=s3://BUCKET/ and the AWS_* variables). A test file writes under a prefix of
 * its own, so files, runs and CI jobs sharing a bucket never collide, and deletes it after.
 * Without TESSERA_TEST_S3 the S3 suites are skipped with a message, except on CI, where that
 * is a failure.
 */
import { randomBytes } from 'node:crypto'
import { describe, it } from 'vitest'
import { openS3Driver, parseS3Url } from '../../src/store/objects/s3.js'

// Never let the AWS SDK look for instance credentials (a request off this machine), here or
// in any child process that inherits this environment.
process.env.AWS_EC2_METADATA_DISABLED = 'true'

/** How to start the server, for skip and failure messages. */
export const S3_HOWTO = 'env_lines=$(bash scripts/s3-up.sh /tmp/tessera-s3 17480) && eval "$env_lines"'

/**
 * A fresh `s3://BUCKET/PREFIX/name-TIME-RANDOM` under TESSERA_TEST_S3 for one test file, or
 * undefined when TESSERA_TEST_S3 is unset.
 */
export function s3RunUrl(name: string): string | undefined {
  const base = process.env.TESSERA_TEST_S3
  if (base === undefined || base === '') return undefined
  return `${base.replace(/\/+$/, '')}/${name}-${Date.now()}-${randomBytes(4).toString('hex')}`
}

/**
 * Registers what stands in for an S3 suite when TESSERA_TEST_S3 is unset: on CI a failing
 * test, elsewhere a skipped suite whose name says how to run it.
 */
export function missingS3(what: string): void {
  if (process.env.CI) {
    it(`runs the ${what} on S3 (CI)`, () => {
      throw new Error(`TESSERA_TEST_S3 is not set, and CI must run the ${what} on S3: see .ci/run and scripts/s3-up.sh`)
    })
  } else {
    describe.skip(`${what} on S3: skipped, TESSERA_TEST_S3 is unset (${S3_HOWTO} to run it)`, () => {
      it('needs a server', () => {})
    })
  }
}

/** Deletes every object under the s3:// URL's prefix (a test's store), a few requests at a time. */
export async function deleteS3Prefix(url: string): Promise<void> {
  if (parseS3Url(url).prefix === '') throw new Error(`Refusing to empty the whole bucket of ${url}`)
  const driver = await openS3Driver(url, process.env)
  try {
    const keys: string[] = []
    for await (const { key } of driver.list('')) keys.push(key)
    let next = 0
    await Promise.all(
      Array.from({ length: 8 }, async () => {
        while (next < keys.length) await driver.delete(keys[next++]!)
      }),
    )
  } finally {
    await driver.close()
  }
}
