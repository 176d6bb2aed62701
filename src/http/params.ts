/**
 * Validation of path and query parameters, before any I/O: unknown query parameters,
 * repeated ones, non-integers and out-of-range values are 400s with ERR_INVALID_ARGUMENT.
 */
import type { FastifyRequest } from 'fastify'
import { InvalidArgumentError, InvalidRegionError } from '../errors.js'
import type { Region } from '../format/interface.js'

/** The request's query as single strings; throws on parameters not in `allowed` or given twice. */
export function queryOf(request: FastifyRequest, allowed: readonly string[]): Record<string, string | undefined> {
  const query = (request.query ?? {}) as Record<string, unknown>
  const out: Record<string, string | undefined> = {}
  for (const [name, value] of Object.entries(query)) {
    if (!allowed.includes(name)) {
      throw new InvalidArgumentError(`Unknown query parameter ${JSON.stringify(name.slice(0, 40))}; expected one of ${allowed.join(', ')}`)
    }
    if (typeof value !== 'string') throw new InvalidArgumentError(`Query parameter ${name} must be given once`)
    out[name] = value
  }
  return out
}

/** A decimal integer from `min` to `max`; `fallback` when absent. */
export function intParam(value: string | undefined, name: string, min: number, max: number, fallback?: number): number {
  if (value === undefined) {
    if (fallback === undefined) throw new InvalidArgumentError(`Missing parameter ${name}`)
    return fallback
  }
  const n = Number(value)
  if (!/^\d{1,16}$/.test(value) || !Number.isSafeInteger(n) || n < min || n > max) {
    throw new InvalidArgumentError(
      `Expected an integer from ${min} to ${max} for ${name} but received ${JSON.stringify(value.slice(0, 40))}`,
    )
  }
  return n
}

/** A boolean: true, 1 or an empty value for true; false or 0 for false; `fallback` when absent. */
export function boolParam(value: string | undefined, name: string, fallback = false): boolean {
  if (value === undefined) return fallback
  if (value === '' || value === 'true' || value === '1') return true
  if (value === 'false' || value === '0') return false
  throw new InvalidArgumentError(`Expected true or false for ${name} but received ${JSON.stringify(value.slice(0, 40))}`)
}

/** One of `choices`; `fallback` when absent. */
export function enumParam<T extends string>(value: string | undefined, name: string, choices: readonly T[], fallback?: T): T {
  if (value === undefined) {
    if (fallback === undefined) throw new InvalidArgumentError(`Missing parameter ${name}`)
    return fallback
  }
  if (!(choices as readonly string[]).includes(value)) {
    throw new InvalidArgumentError(`Expected one of ${choices.join(', ')} for ${name} but received ${JSON.stringify(value.slice(0, 40))}`)
  }
  return value as T
}

/** `x,y,width,height`, four non-negative integers (spec/format.md §8). */
export function regionParam(value: string | undefined): Region {
  if (value === undefined) throw new InvalidRegionError('Missing parameter region (x,y,width,height)')
  const parts = value.split(',')
  if (parts.length !== 4 || parts.some((part) => !/^\d{1,16}$/.test(part))) {
    throw new InvalidRegionError(`Expected a region as x,y,width,height but received ${JSON.stringify(value.slice(0, 60))}`)
  }
  const [x, y, width, height] = parts.map(Number) as [number, number, number, number]
  return { x, y, width, height }
}
