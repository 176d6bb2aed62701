/**
 * This process's peak resident set size, for the figures it reports (`crop --stats`) and the
 * benchmarks' and tests' child processes.
 */
import { readFileSync } from 'node:fs'

/**
 * Peak resident bytes of this program since it started. On Linux, the address space's own
 * high-water mark (VmHWM in /proc/self/status). Not getrusage's ru_maxrss
 * (`process.resourceUsage().maxRSS`): Linux carries that over exec, so a process started by a
 * 2 GiB parent (a data loader, a benchmark harness) reported at least 2 GiB, the parent's pages
 * it shared between fork and exec. Elsewhere ru_maxrss is all there is.
 */
export function peakRssBytes(): number {
  try {
    const hwm = /^VmHWM:\s*(\d+) kB$/m.exec(readFileSync('/proc/self/status', 'latin1'))
    if (hwm !== null) return Number(hwm[1]) * 1024
  } catch {
    // Not Linux, or /proc not mounted.
  }
  return process.resourceUsage().maxRSS * 1024
}
