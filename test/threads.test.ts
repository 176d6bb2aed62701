/**
 * WorkerPool: results come back, and errors thrown on a worker thread come back as the class
 * they were thrown as (a TesseraError by its code), with their name, code and message.
 */
import { readFile } from 'node:fs/promises'
import { setTimeout as sleep } from 'node:timers/promises'
import { afterAll, describe, expect, it } from 'vitest'
import { errorFromCode, IntegrityError, isTesseraCode, StoreError, TesseraError, tesseraCode } from '../src/errors.js'
import { WorkerPool } from '../src/threads.js'
import type { ThrowJob } from './helpers/throwing-worker.js'

const pool = new WorkerPool<ThrowJob, string>({
  url: new URL('./helpers/throwing-worker.js', import.meta.url),
  size: 1,
  inline: () => 'inline',
})
afterAll(() => pool.close())

async function rejection(job: ThrowJob): Promise<unknown> {
  return pool.run(job).then(
    () => expect.fail('the job should have failed'),
    (error: unknown) => error,
  )
}

describe('WorkerPool', () => {
  it('returns results from the worker', async () => {
    expect(await pool.run('none')).toBe('ok')
  })

  it('rebuilds an IntegrityError thrown on the worker as an IntegrityError', async () => {
    const error = await rejection('integrity')
    expect(error).toBeInstanceOf(IntegrityError)
    expect(error).toBeInstanceOf(TesseraError)
    expect(error).toMatchObject({ name: 'IntegrityError', code: 'ERR_INTEGRITY', message: 'A tile does not match its hash' })
    // The pool goes on serving jobs after a failure.
    expect(await pool.run('none')).toBe('ok')
  })

  it('keeps the code of a class that carries several codes', async () => {
    const error = await rejection('store-locked')
    expect(error).toBeInstanceOf(StoreError)
    expect(error).toMatchObject({ name: 'StoreError', code: 'ERR_STORE_LOCKED', message: 'The store is locked' })
  })

  it("keeps other errors' name, code and message, and does not make them Tessera errors", async () => {
    const system = await rejection('system')
    expect(system).not.toBeInstanceOf(TesseraError)
    expect(system).toMatchObject({ name: 'Error', code: 'ENOENT', message: "ENOENT: no such file or directory, open '/nowhere'" })
    const type = await rejection('type')
    expect(type).not.toBeInstanceOf(TesseraError)
    expect(type).toMatchObject({ name: 'TypeError', message: 'x is not a function' })
    expect((type as Error).stack).toContain('throwing-worker')
    expect(await rejection('string')).toMatchObject({ message: 'a string' })
  })

  it("frees the buffers of a worker's finished jobs without waiting for V8's 64 MiB trigger", async () => {
    // A pool of its own, so that the worker's job count starts here.
    const fresh = new WorkerPool<ThrowJob, string>({
      url: new URL('./helpers/throwing-worker.js', import.meta.url),
      size: 1,
      inline: () => '',
    })
    try {
      for (let i = 0; i < 12; i++) await fresh.run('garbage')
      // 48 MiB were allocated; every 4th job the worker collects if it holds more than 8 MiB
      // (without, 16 MiB stay). V8 frees the buffers of a collection on a thread of its own:
      // give it up to 2 s.
      let held = Number.POSITIVE_INFINITY
      for (let wait = 0; wait < 10 && held >= 9 << 20; wait++) {
        await sleep(200)
        held = Number(await fresh.run('buffer-bytes'))
      }
      expect(held).toBeLessThan(9 << 20)
    } finally {
      await fresh.close()
    }
  })

  it('fails the job of a worker that exits, and starts another for the next job', async () => {
    expect(await rejection('exit')).toMatchObject({ message: expect.stringMatching(/exited with code 3/) })
    expect(await pool.run('none')).toBe('ok')
  })
})

describe('errors by code', () => {
  it('has a class for every code of spec/errors.md', async () => {
    const spec = await readFile(new URL('../spec/errors.md', import.meta.url), 'utf8')
    const codes = [...spec.matchAll(/^### (ERR_[A-Z_]+)/gm)].map((match) => match[1]!)
    expect(codes.length).toBeGreaterThan(10)
    for (const code of codes) {
      const error = errorFromCode(code, 'message')
      expect(error, code).toBeInstanceOf(TesseraError)
      expect(error, code).toMatchObject({ code, message: 'message' })
    }
    expect(errorFromCode('ERR_INTEGRITY', 'm')).toBeInstanceOf(IntegrityError)
  })

  it("reads Tessera's codes only", () => {
    expect(isTesseraCode('ERR_STREAM_DESTROYED')).toBe(false)
    expect(errorFromCode('ERR_STREAM_DESTROYED', 'm')).toBeUndefined()
    expect(tesseraCode(new IntegrityError('m'))).toBe('ERR_INTEGRITY')
    expect(tesseraCode(new TesseraError('ERR_SOMETHING_NEW', 'm'))).toBe('ERR_SOMETHING_NEW')
    expect(tesseraCode({ name: 'IntegrityError', code: 'ERR_INTEGRITY', message: 'm' })).toBe('ERR_INTEGRITY')
    expect(tesseraCode(Object.assign(new Error('m'), { code: 'ERR_STREAM_DESTROYED' }))).toBeUndefined()
    expect(tesseraCode(Object.assign(new Error('m'), { code: 'EPIPE' }))).toBeUndefined()
    expect(tesseraCode('ERR_INTEGRITY')).toBeUndefined()
    expect(tesseraCode(null)).toBeUndefined()
  })
})
