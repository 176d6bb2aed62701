/** Where the embedded store lives when no directory is given (spec/store.md, Location). */
import { homedir } from 'node:os'
import { isAbsolute, join } from 'node:path'

/**
 * `TESSERA_STORE` if set; else `$XDG_DATA_HOME/tessera`; else `~/.local/share/tessera`.
 * A per-user data directory, like other content-addressed stores keep one. A relative
 * XDG_DATA_HOME is ignored, as the XDG Base Directory specification requires.
 */
export function defaultStoreDir(env: NodeJS.ProcessEnv = process.env): string {
  if (env.TESSERA_STORE) return env.TESSERA_STORE
  if (env.XDG_DATA_HOME && isAbsolute(env.XDG_DATA_HOME)) return join(env.XDG_DATA_HOME, 'tessera')
  return join(homedir(), '.local', 'share', 'tessera')
}
