// Temporary directories for tests (data dirs, list dirs, SQLite files), removed when the test
// process exits: tap runs each test file in a process of its own, so a file's directories go when
// it ends, passed or failed. EGRESSD_TEST_KEEP_TMP=1 keeps them (their paths are in the test's
// output where it prints them) for a look after a failure.

import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'

const made: string[] = []

function removeAll (): void {
  for (const dir of made) rmSync(dir, { recursive: true, force: true })
}

/** A new empty directory under the system's temporary directory, named `prefix` + random. */
export function tempDir (prefix: string): string {
  const dir = mkdtempSync(join(tmpdir(), prefix))
  if (made.length === 0 && process.env.EGRESSD_TEST_KEEP_TMP !== '1') process.once('exit', removeAll)
  made.push(dir)
  return dir
}
