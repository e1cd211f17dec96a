// The last-known-good copies of URL sources under `<dataDir>/lists/`: `<source>.txt` (the list as
// accepted, byte for byte) and `<source>.json` (its sha256, URL, fetch time, validators, entries).
// Every file is written to a temp file, fsynced and renamed into place, so a crash leaves either
// the old or the new copy, never a torn one. A new copy is committed in two steps: the previous one
// is kept as `<source>.prev.txt` until the new one has been compiled into an engine and its meta
// written; on start, a copy whose hash does not match its meta is replaced by the previous one.

import { createHash } from 'node:crypto'
import { closeSync, fsyncSync, linkSync, mkdirSync, openSync, readFileSync, renameSync, unlinkSync, writeSync } from 'node:fs'
import { join } from 'node:path'
import type { Logger } from 'pino'

export interface StoredMeta {
  readonly source: string
  readonly url: string
  readonly sha256: string
  /** ISO time of the download this copy came from. */
  readonly fetchedAt: string
  readonly etag?: string
  readonly lastModified?: string
  readonly entries: number
  readonly bytes: number
  /** Name of the public key that verified it, for signed lists. */
  readonly signedBy?: string
  /** format ms365 with a versionUrl: the published version (`latest`) this copy is of. */
  readonly version?: string
}

export interface StoredCopy { readonly file: string, readonly meta: StoredMeta }

export const sha256 = (data: Buffer): string => createHash('sha256').update(data).digest('hex')

const ignoreMissing = (f: () => void): void => {
  try { f() } catch (err) { if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err }
}

export class LastGoodStore {
  readonly dir: string
  readonly #log: Logger

  constructor (dir: string, log: Logger) {
    this.dir = dir
    this.#log = log
  }

  file (source: string): string { return join(this.dir, `${source}.txt`) }
  #meta (source: string): string { return join(this.dir, `${source}.json`) }
  #prev (source: string): string { return join(this.dir, `${source}.prev.txt`) }

  /** The stored copy of `source`, checked against its meta; undefined when there is none. */
  read (source: string): StoredCopy | undefined {
    let meta: StoredMeta
    try {
      meta = JSON.parse(readFileSync(this.#meta(source), 'utf8')) as StoredMeta
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') this.#log.warn({ source, err: (err as Error).message }, 'stored list meta unreadable; the copy is not used')
      return undefined
    }
    const hashOf = (f: string): string | undefined => { try { return sha256(readFileSync(f)) } catch { return undefined } }
    const file = this.file(source)
    if (hashOf(file) === meta.sha256) return { file, meta }
    // A crash between committing a copy and writing its meta: the previous copy is the good one.
    if (hashOf(this.#prev(source)) === meta.sha256) {
      renameSync(this.#prev(source), file)
      this.#log.warn({ source }, 'stored list did not match its meta; went back to the previous copy')
      return { file, meta }
    }
    this.#log.warn({ source, file }, 'stored list does not match its sha256; the copy is not used')
    return undefined
  }

  /** Writes `data` to a temp file next to the copy, fsynced; returns its path. */
  stage (source: string, data: Buffer): string {
    mkdirSync(this.dir, { recursive: true })
    const tmp = join(this.dir, `${source}.txt.${process.pid}.tmp`)
    writeDurably(tmp, data)
    return tmp
  }

  /** Drops a staged file that was not committed. */
  discard (tmp: string): void { ignoreMissing(() => unlinkSync(tmp)) }

  /**
   * Puts a staged file in place of the copy (atomic rename), keeping the old one as `.prev.txt`.
   * Returns an undo that restores the old copy (for when the new one cannot be compiled).
   */
  commit (source: string, tmp: string): () => void {
    const file = this.file(source)
    const prev = this.#prev(source)
    ignoreMissing(() => unlinkSync(prev))
    let hadPrevious = true
    try { linkSync(file, prev) } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err
      hadPrevious = false
    }
    renameSync(tmp, file)
    syncDir(this.dir)
    return () => {
      if (hadPrevious) renameSync(prev, file)
      else ignoreMissing(() => unlinkSync(file))
      syncDir(this.dir)
    }
  }

  /** Records the meta of the committed copy; from here on the previous copy is not needed. */
  writeMeta (meta: StoredMeta): void {
    const target = this.#meta(meta.source)
    const tmp = `${target}.${process.pid}.tmp`
    writeDurably(tmp, Buffer.from(JSON.stringify(meta, null, 2) + '\n'))
    renameSync(tmp, target)
    syncDir(this.dir)
    ignoreMissing(() => unlinkSync(this.#prev(meta.source)))
  }
}

function writeDurably (path: string, data: Buffer): void {
  const fd = openSync(path, 'w', 0o644)
  try {
    let off = 0
    while (off < data.length) off += writeSync(fd, data, off)
    fsyncSync(fd)
  } finally {
    closeSync(fd)
  }
}

function syncDir (dir: string): void {
  const fd = openSync(dir, 'r')
  try { fsyncSync(fd) } finally { closeSync(fd) }
}
