// The config a CLI command runs on: found as config/discover.ts says (--config, EGRESSD_CONFIG,
// /etc/egressd/egressd.yaml, built-in defaults), loaded once, and named on stderr together with the
// data dir, so an admin sees which files the answer came from:
//   egressd: config /etc/egressd/egressd.yaml, data /var/lib/egressd

import { resolve } from 'node:path'
import { discoverConfig, type ConfigChoice } from '../config/discover.js'
import { loadConfig, type ConfigOverrides } from '../config/load.js'
import type { Config } from '../config/types.js'
import type { CliIo } from './io.js'

/** The one stderr line: which config (and why), which data dir. */
export function describeConfig (choice: ConfigChoice, config: Config | undefined, env: NodeJS.ProcessEnv): string {
  const file = choice.file === undefined
    ? `none (built-in defaults: no --config, no EGRESSD_CONFIG, no ${choice.systemFile})`
    : `${resolve(choice.file)}${choice.origin === 'EGRESSD_CONFIG' ? ' (EGRESSD_CONFIG)' : ''}`
  if (config === undefined) return `egressd: config ${file}\n`
  const fromEnv = env.EGRESSD_DATA_DIR !== undefined && env.EGRESSD_DATA_DIR !== '' ? ' (EGRESSD_DATA_DIR)' : ''
  return `egressd: config ${file}, data ${resolve(config.dataDir)}${fromEnv}\n`
}

/** Finds, loads and names (on stderr) the config; throws ConfigError as loadConfig does. */
export function loadCliConfig (io: CliIo, flag: string | undefined, overrides?: ConfigOverrides): Config {
  const choice = discoverConfig(flag, io.env)
  let config: Config | undefined
  try {
    config = loadConfig({ file: choice.file, env: io.env, overrides, bundledBlocklistsDir: io.bundledBlocklistsDir })
    return config
  } finally {
    io.err(describeConfig(choice, config, io.env))
  }
}
