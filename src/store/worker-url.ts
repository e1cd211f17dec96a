// Where a worker module is, and how to start it. From dist/ (production): the `.js` next to the
// module that starts it. From the TypeScript sources (tests run them under tap's TypeScript loader):
// the compiled copy in dist/ when there is one (`npm test` compiles first), started without the
// loader, since loading TypeScript in every worker costs seconds per daemon; else the `.ts` sibling
// under the inherited loader.

import { existsSync } from 'node:fs'
import { fileURLToPath } from 'node:url'

export interface WorkerModule { readonly url: URL, readonly execArgv?: string[] }

export function workerModule (importMetaUrl: string, base: string): WorkerModule {
  if (!importMetaUrl.endsWith('.ts')) return { url: new URL(`./${base}.js`, importMetaUrl) }
  const compiled = new URL(`../../dist/store/${base}.js`, importMetaUrl)
  if (existsSync(fileURLToPath(compiled))) return { url: compiled, execArgv: [] }
  return { url: new URL(`./${base}.ts`, importMetaUrl) }
}
