// lists/: downloads of URL sources (fetcher with SSRF checks, signatures, checks, last-known-good
// copies, the scheduler). Imports config/, policy/ (parsers), errors.ts, and dns/ only for
// host-resolver.ts (list hosts are resolved through the configured upstreams). Re-exports only.

export { ListUpdater, type ListUpdaterDeps, type ListSourceStatus, type SourceUpdateResult, type UpdateOutcome, type Timers } from './updater.js'
export { upstreamHostResolver, type HostResolver } from './host-resolver.js'
export { generateKeys, privateKey, publicKey, signList, verifyList } from './signature.js'
export { refusedRange } from './addresses.js'
