// The operational logger: pino JSON on stdout (journald in production). Created once by the entry
// point and handed down; modules take children (`log.child({ mod: 'upstream' })`).

import { pino, type Logger } from 'pino'
import type { LogLevel } from './config/types.js'

export function createLogger (level: LogLevel, destination?: pino.DestinationStream): Logger {
  return pino({ level, base: { name: 'egressd' }, timestamp: pino.stdTimeFunctions.isoTime }, destination ?? pino.destination({ dest: 1, sync: false }))
}
