import t from 'tap'
import { BlockLog } from '../../src/store/block-log.js'
import { BlockSearch } from '../../src/store/block-reader.js'
import { freshDb, memoryLog, event } from './helpers.js'

t.test('smoke', async t => {
  const { path, db } = freshDb()
  const { log } = memoryLog()
  const bl = await BlockLog.open({ path, synchronous: 'NORMAL', busyTimeoutMs: 500, queueMax: 1000, batchMs: 50, retention: { days: 90, maxRows: 0, maxBytes: 0 }, log })
  for (let i = 0; i < 10; i++) bl.push(event({ ts: 1_700_000_000_000 + i }))
  t.ok(await bl.flush())
  const rs = await BlockSearch.open({ path })
  const page = await rs.search({}, { limit: 3 })
  t.equal(page.rows.length, 3)
  console.log(page)
  const page2 = await rs.search({}, { limit: 30, cursor: page.next })
  t.equal(page2.rows.length, 7)
  console.log(await rs.stats({ from: 1_700_000_000_000 - 3600_000, to: 1_700_000_000_000 + 3600_000 }))
  await rs.close()
  await bl.close()
  db.close()
})
