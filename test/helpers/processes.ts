/**
 * Other processes for concurrency tests: the built CLI (bin/tessera.js, from dist/bundle) and
 * StoreChild (test/helpers/store-child.ts, run from the sources). Every process started here is
 * bounded by a deadline and remembered, so that a test's afterEach can kill what is left.
 */
import { type ChildProcess, spawn } from 'node:child_process'
import { existsSync, readdirSync, statSync } from 'node:fs'
import { join } from 'node:path'
import { createInterface } from 'node:readline'
import type { ChildRequest } from './store-child.js'

const root = new URL('../../', import.meta.url).pathname
const bin = join(root, 'bin/tessera.js')
const built = join(root, 'dist/bundle/main.js')
const childScript = join(root, 'test/helpers/store-child.ts')

// Whatever runs anything with the AWS SDK must never ask the instance-metadata service.
const baseEnv = (): NodeJS.ProcessEnv => ({ ...process.env, AWS_EC2_METADATA_DISABLED: 'true' })

const alive = new Set<ChildProcess>()

/** Kills (SIGKILL) every process started here that is still running. */
export function killAll(): void {
  for (const child of alive) child.kill('SIGKILL')
  alive.clear()
}

function track(child: ChildProcess, deadlineMs: number): void {
  alive.add(child)
  const timer = setTimeout(() => child.kill('SIGKILL'), deadlineMs)
  timer.unref()
  child.on('exit', () => {
    clearTimeout(timer)
    alive.delete(child)
  })
}

/**
 * True when dist/bundle is missing or older than a source file the built CLI runs (the store,
 * datasets, crops, imports, the CLI): run `npm run build`.
 */
export function cliIsStale(): boolean {
  if (!existsSync(built)) return true
  const builtAt = statSync(built).mtimeMs
  const newer = (path: string): boolean =>
    statSync(path).isDirectory() ? readdirSync(path).some((name) => newer(join(path, name))) : statSync(path).mtimeMs > builtAt
  return ['src/store', 'src/dataset', 'src/cli', 'src/crop', 'src/import', 'src/image.ts'].some((path) => newer(join(root, path)))
}

/** How a process ended, and what it printed. */
export interface Exit {
  readonly code: number | null
  readonly signal: NodeJS.Signals | null
  readonly stdout: Buffer
  readonly stderr: string
}

/** A running process of the built CLI. */
export interface CliProcess {
  readonly child: ChildProcess
  readonly exit: Promise<Exit>
}

/** Starts `tessera ...args` on the store at `location`, killed after `deadlineMs`. */
export function startCli(location: string, args: readonly string[], cwd: string, deadlineMs = 60_000): CliProcess {
  const child = spawn(process.execPath, [bin, ...args], { cwd, env: { ...baseEnv(), TESSERA_STORE: location } })
  track(child, deadlineMs)
  const out: Buffer[] = []
  let stderr = ''
  child.stdout!.on('data', (chunk: Buffer) => out.push(chunk))
  child.stderr!.on('data', (chunk: Buffer) => {
    stderr += chunk.toString()
  })
  const exit = new Promise<Exit>((resolve) =>
    child.on('close', (code, signal) => resolve({ code, signal, stdout: Buffer.concat(out), stderr })),
  )
  return { child, exit }
}

/** Runs `tessera ...args` to its end. */
export function runCli(location: string, args: readonly string[], cwd: string, deadlineMs?: number): Promise<Exit> {
  return startCli(location, args, cwd, deadlineMs).exit
}

/** An error a StoreChild answered with: its code, as the store threw it. */
export class ChildError extends Error {
  readonly code: string
  constructor(code: string, message: string) {
    super(`${code}: ${message}`)
    this.code = code
  }
}

/** A store client in another process (test/helpers/store-child.ts): see the request types there. */
export class StoreChild {
  readonly child: ChildProcess
  #next = 1
  readonly #waiting = new Map<number, { resolve: (value: unknown) => void; reject: (error: Error) => void }>()
  #stderr = ''
  readonly exited: Promise<number | null>

  /** Opens the store at `location` in a new process, killed after `deadlineMs`. */
  constructor(location: string, deadlineMs = 60_000) {
    this.child = spawn(process.execPath, ['--import', 'tsx', childScript, location], { cwd: root, env: baseEnv() })
    track(this.child, deadlineMs)
    this.child.stderr!.on('data', (chunk: Buffer) => {
      this.#stderr += chunk.toString()
    })
    createInterface({ input: this.child.stdout! }).on('line', (line) => {
      const message = JSON.parse(line) as { id: number; ok: boolean; value?: unknown; code?: string; message?: string }
      const waiting = this.#waiting.get(message.id)
      this.#waiting.delete(message.id)
      if (message.ok) waiting?.resolve(message.value)
      else waiting?.reject(new ChildError(message.code!, message.message!))
    })
    this.exited = new Promise((resolve) =>
      this.child.on('close', (code) => {
        for (const { reject } of this.#waiting.values()) reject(new Error(`The store child exited (${code}): ${this.#stderr}`))
        this.#waiting.clear()
        resolve(code)
      }),
    )
  }

  /** Sends one request; resolves with its value, rejects with a ChildError. */
  request<T = unknown>(request: ChildRequest): Promise<T> {
    const id = this.#next++
    return new Promise<T>((resolve, reject) => {
      this.#waiting.set(id, { resolve: resolve as (value: unknown) => void, reject })
      this.child.stdin!.write(`${JSON.stringify({ id, ...request })}\n`)
    })
  }

  /** Closes stdin (the child aborts what is open, closes the store and exits); resolves with its exit code. */
  async close(): Promise<number | null> {
    this.child.stdin!.end()
    return this.exited
  }
}
