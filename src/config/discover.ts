// Which config file a CLI command reads, the way an admin expects: `--config FILE`, else the
// environment's EGRESSD_CONFIG, else /etc/egressd/egressd.yaml when it exists, else none (the
// built-in defaults). Also where the CLI's default token file is (/etc/egressd/cli.token).
//
// EGRESSD_ETC_DIR replaces /etc/egressd for both (tests, staged installs under a prefix); an empty
// value counts as unset. Reads the environment object it is given, never process.env itself.

import { existsSync } from 'node:fs'
import { join } from 'node:path'

export const SYSTEM_CONFIG_DIR = '/etc/egressd'

export type ConfigOrigin = '--config' | 'EGRESSD_CONFIG' | 'system' | 'defaults'

export interface ConfigChoice {
  /** The file to load; undefined: the built-in defaults. */
  readonly file: string | undefined
  readonly origin: ConfigOrigin
  /** The system file that was looked for (reported when none was found). */
  readonly systemFile: string
}

const set = (v: string | undefined): v is string => v !== undefined && v !== ''

/** /etc/egressd, or EGRESSD_ETC_DIR. */
export function systemConfigDir (env: NodeJS.ProcessEnv): string {
  return set(env.EGRESSD_ETC_DIR) ? env.EGRESSD_ETC_DIR : SYSTEM_CONFIG_DIR
}

/** The config file a command reads (see the header). A file named by --config or EGRESSD_CONFIG is taken even when missing: loading it then says it cannot be read. */
export function discoverConfig (flag: string | undefined, env: NodeJS.ProcessEnv, exists: (path: string) => boolean = existsSync): ConfigChoice {
  const systemFile = join(systemConfigDir(env), 'egressd.yaml')
  if (flag !== undefined) return { file: flag, origin: '--config', systemFile }
  if (set(env.EGRESSD_CONFIG)) return { file: env.EGRESSD_CONFIG, origin: 'EGRESSD_CONFIG', systemFile }
  if (exists(systemFile)) return { file: systemFile, origin: 'system', systemFile }
  return { file: undefined, origin: 'defaults', systemFile }
}
