// Readiness: the parts that keep egressd from serving (DNS listeners bound, lists loaded, the
// policy file complete, store writable, at least one upstream healthy). GET /readyz answers with
// them, and the status reports them.

import type { ApiHost } from './host.js'

export const READY_PARTS = ['dns-listeners', 'lists', 'policy', 'store', 'upstreams'] as const
export type ReadyPart = typeof READY_PARTS[number]

/** The parts that keep egressd from being ready (empty: ready). */
export function notReady (host: ApiHost): ReadyPart[] {
  const failing: ReadyPart[] = []
  if (host.addresses.length === 0) failing.push('dns-listeners')
  if (host.policyBuild.lists.length === 0) failing.push('lists')
  // Custom rules, overrides or audit rows lost to damage (until acknowledged), or no policy file.
  if (host.policyStore !== undefined && !host.policyStore.complete) failing.push('policy')
  if (!storeWritable(host)) failing.push('store')
  if (!host.pool.health().some(h => h.healthy)) failing.push('upstreams')
  return failing
}

/**
 * The store can write: it is open, and the block log's last write attempt succeeded (no failed
 * attempt since the last commit, no write hung in flight). Judged by what the writes did, not by
 * file permissions: a full disk fails every write of a file whose mode allows writing, and a
 * read-only directory does not stop the files already open from being written.
 */
function storeWritable (host: ApiHost): boolean {
  const db = host.db
  if (db === undefined || !db.open || db.readonly) return false
  const bl = host.blockLogFigures()
  if (bl !== undefined) return bl.state === undefined || bl.state === 'ok'
  // No block log (not started yet, or its writer could not open the file, which is logged
  // loudly): the connection at least answers.
  try {
    db.prepare('SELECT 1').get()
    return true
  } catch {
    return false
  }
}
