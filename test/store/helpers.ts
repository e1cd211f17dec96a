// Shared fixtures for the store tests: a fresh database file in a temp dir, a quiet logger, and
// events built from a few fields.

import { join } from 'node:path'
import { Writable } from 'node:stream'
import { createLogger } from '../../src/log.js'
import { openDatabase } from '../../src/store/db.js'
import type { BlockEvent } from '../../src/store/block-event.js'
import { tempDir } from '../helpers/tmp.js'

export function tempDbPath (): string {
  return join(tempDir('egressd-store-'), 'egressd.sqlite')
}

export function freshDb (path = tempDbPath()): { path: string, db: ReturnType<typeof openDatabase> } {
  return { path, db: openDatabase(path) }
}

export function memoryLog (): { log: ReturnType<typeof createLogger>, lines: () => Array<Record<string, unknown>> } {
  const lines: string[] = []
  const sink = new Writable({ write (chunk, _e, cb) { lines.push(...String(chunk).split('\n').filter(Boolean)); cb() } })
  return { log: createLogger('info', sink), lines: () => lines.map(l => JSON.parse(l)) }
}

export function event (p: Partial<BlockEvent> & { ts: number }): BlockEvent {
  return {
    client: '10.0.0.1',
    group: 'default',
    qname: 'web.telegram.org',
    qtype: 1,
    matched: 'qname',
    value: p.qname ?? 'web.telegram.org',
    category: 'telegram',
    action: 'nxdomain',
    list: 'blocklists/telegram/domains.txt',
    line: 3,
    rule: 'telegram.org',
    listHash: '0123456789abcdef',
    ...p
  }
}
