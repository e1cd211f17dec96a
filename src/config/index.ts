// config/: the YAML schema, loading, defaults, env overrides and the frozen `Config` every component
// gets a slice of. Imports nothing from the rest of egressd except errors.ts. Re-exports only.

export { parseConfig, loadConfig, nameservers, type ParseConfigOptions, type LoadConfigOptions, type ConfigOverrides } from './load.js'
export { ConfigFileSchema, type ConfigFile } from './schema.js'
export type * from './types.js'
