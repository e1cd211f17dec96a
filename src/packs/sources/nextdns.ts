// nextdns/services service definitions (`sources/nextdns/services/<id>`): plain text, one host name
// per line; NextDNS blocks each name and every name under it (suffix match), so each is kind
// `domain`. `#` starts a comment anywhere on a line (the repository uses it after a name for the
// issue that added it); blank lines are skipped. A line that is not one host name is an issue.
// The repository has no README: the format is what its files show.

import { toName } from '../../policy/names.js'
import { isSourceId, readSourceText, sourceLines } from './read-text.js'
import { type SourceEntry, type SourceIssue, type SourceList } from './types.js'

const SERVICES_DIR = 'nextdns/services'

/** The names of NextDNS service `id` (`sourcesDir/nextdns/services/<id>`). A missing file is an issue. */
export function readNextdnsService (sourcesDir: string, id: string): SourceList {
  const file = `${SERVICES_DIR}/${id}`
  const entries: SourceEntry[] = []
  const issues: SourceIssue[] = []
  if (!isSourceId(id)) {
    issues.push({ file, line: 0, message: 'not a service id' })
    return { entries, dropped: [], issues }
  }
  const read = readSourceText(sourcesDir, file)
  if ('issue' in read) {
    issues.push(read.issue)
    return { entries, dropped: [], issues }
  }
  const lines = sourceLines(read.text)
  for (let i = 0; i < lines.length; i++) {
    const hash = lines[i].indexOf('#')
    const text = (hash < 0 ? lines[i] : lines[i].slice(0, hash)).trim()
    if (text === '') continue
    const name = toName(text)
    if (typeof name === 'string') entries.push({ kind: 'domain', value: name, file, line: i + 1, attrs: [] })
    else issues.push({ file, line: i + 1, message: `${JSON.stringify(text)}: ${name.error}` })
  }
  return { entries, dropped: [], issues }
}
