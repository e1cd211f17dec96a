// Where a worker module is, and how to start it. From dist/ (production): the `.js` next to the
// module that starts it. From the TypeScript sources (tests run them under tap's TypeScript loader):
// the compiled copy in dist/ when there is one (`npm test` compiles first), started without the
// loader, since loading TypeScript in every worker costs seconds per daemon; else the `.ts` sibling
// under the inherited loader.

import { existsSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import { Worker } from 'node:worker_threads'
import type { ThreadPriority } from './thread-priority.js'

export interface WorkerModule { readonly url: URL, readonly execArgv?: string[] }

function workerModule (importMetaUrl: string, base: string): WorkerModule {
  if (!importMetaUrl.endsWith('.ts')) return { url: new URL(`./${base}.js`, importMetaUrl) }
  const compiled = new URL(`../../dist/store/${base}.js`, importMetaUrl)
  if (existsSync(fileURLToPath(compiled))) return { url: compiled, execArgv: [] }
  return { url: new URL(`./${base}.ts`, importMetaUrl) }
}

/** What a worker posts once it is ready; `priority` when it tried to lower its CPU priority. */
export interface WorkerReady { readonly type: 'ready', readonly priority?: ThreadPriority }

/**
 * Starts the worker `base` with `data` and resolves, with that message, once it posts
 * `{ type: 'ready' }`; a `{ type: 'fatal', message, code? }` (it could not open the database) or an
 * error rejects, with the worker stopped.
 */
export function startWorker (importMetaUrl: string, base: string, data: unknown): Promise<{ worker: Worker, ready: WorkerReady }> {
  const where = workerModule(importMetaUrl, base)
  const worker = new Worker(where.url, { workerData: data, execArgv: where.execArgv })
  return new Promise((resolve, reject) => {
    const onError = (err: Error): void => reject(err)
    worker.once('error', onError)
    worker.once('message', (m: { type: string, message?: string, code?: string }) => {
      worker.off('error', onError)
      if (m.type === 'ready') { resolve({ worker, ready: m as WorkerReady }); return }
      void worker.terminate()
      reject(Object.assign(new Error(m.type === 'fatal' ? m.message ?? 'failed' : `${base} did not start`), { code: m.code ?? 'ERR' }))
    })
  })
}
