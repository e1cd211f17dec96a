// The block log's part of GET /api/v1/status: whether its writes succeed (state, the last
// success, the last error with its SQLite code, failures in a row), the queue that holds what is
// not written yet (failed batches waiting for their retry included) against its bound, and what
// was written and dropped since start.

import { Type, type Static } from '@sinclair/typebox'
import type { BlockLogFigures } from '../store/stores.js'
import { Iso, Nullable } from './schemas.js'

export const BlockLogStatus = Type.Object({
  state: Type.String({ description: 'ok; failing (the last write attempt failed; events stay queued and are retried); stalled (a write in flight for over 30 s)' }),
  queueDepth: Type.Integer({ description: 'Events queued or in flight, failed batches waiting for a retry included' }),
  queueMax: Nullable(Type.Integer({ description: 'store.queueMax: events beyond it are dropped and counted' })),
  written: Type.Integer(),
  dropped: Type.Integer({ description: 'Events dropped since start (queue full, or a batch writer threads kept dying on)' }),
  failures: Type.Integer({ description: 'Failed write attempts since start (each batch is retried)' }),
  consecutiveFailures: Type.Integer({ description: 'Failed attempts since the last successful write' }),
  lastOk: Nullable(Iso),
  lastDrop: Nullable(Iso),
  heldForDns: Type.Boolean({ description: 'Writes held back because the DNS thread needs its whole core and the writer shares it (DNS first; the machine is saturated): events queue, then drop' }),
  writer: Nullable(Type.Object({
    busySeconds: Type.Number({ description: 'Time the writer thread spent in write transactions since start' }),
    cpuSeconds: Type.Number({ description: 'Of which on a CPU' }),
    cpuWaitSeconds: Type.Number({ description: 'Of which runnable but waiting for a CPU: the core was busy with DNS or other work (saturation)' })
  })),
  lastError: Nullable(Type.Object({ code: Type.String({ description: 'SQLite error code (SQLITE_FULL, SQLITE_BUSY, SQLITE_IOERR_...) or WRITER_DIED / WRITER_START' }), message: Type.String(), at: Iso }))
})

export function blockLogStatus (bl: BlockLogFigures, iso: (ms: number) => string): Static<typeof BlockLogStatus> {
  return {
    state: bl.state ?? 'ok',
    queueDepth: bl.queueDepth,
    queueMax: bl.queueMax ?? null,
    written: bl.written ?? 0,
    dropped: bl.dropped,
    failures: bl.failures ?? 0,
    consecutiveFailures: bl.consecutiveFailures ?? 0,
    lastOk: bl.lastOkAt === undefined ? null : iso(bl.lastOkAt),
    lastDrop: bl.lastDropAt === undefined ? null : iso(bl.lastDropAt),
    heldForDns: bl.heldForDns ?? false,
    writer: bl.writer === undefined ? null : { busySeconds: bl.writer.busyMs / 1000, cpuSeconds: bl.writer.cpuMs / 1000, cpuWaitSeconds: bl.writer.cpuWaitMs / 1000 },
    lastError: bl.lastError === undefined ? null : { code: bl.lastError.code, message: bl.lastError.message, at: iso(bl.lastError.at) }
  }
}
