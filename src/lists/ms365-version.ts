// Microsoft's version service for the ms365 list format: before downloading the endpoints, the
// updater asks https://endpoints.office.com/version/Worldwide?clientrequestid=GUID for `latest`
// and skips the download when the accepted copy is of that version (Microsoft asks callers to do
// so: the endpoints change about once a month, the version answer is a few bytes).

import { ListUpdateError } from '../errors.js'
import { fetchList, type FetchOptions } from './fetcher.js'

const VERSION_MAX_BYTES = 4096

/**
 * Asks Microsoft's version service for the latest published version of an instance: the answer
 * is `{"instance":"Worldwide","latest":"YYYYMMDDNN"}`. Fetched like a list (same address checks,
 * TLS and deadline); anything else is a ListUpdateError with reason `version`.
 */
export async function publishedVersion (o: Omit<FetchOptions, 'maxBytes' | 'etag' | 'lastModified'>): Promise<string> {
  const r = await fetchList({ ...o, maxBytes: VERSION_MAX_BYTES })
  const bad = (why: string): ListUpdateError => new ListUpdateError('EGRESSD_ERR_LIST_REJECTED', o.source, 'version', `${o.url}: ${why}`)
  if (r.status !== 'ok') throw bad('HTTP 304 to an unconditional request')
  let answer: unknown
  try {
    answer = JSON.parse(r.body.toString('utf8'))
  } catch {
    throw bad('the version answer is not JSON')
  }
  const latest = typeof answer === 'object' && answer !== null ? (answer as { latest?: unknown }).latest : undefined
  if (typeof latest !== 'string' || !/^[0-9]{10}$/.test(latest)) throw bad('the version answer has no "latest" of 10 digits (YYYYMMDDNN)')
  return latest
}
