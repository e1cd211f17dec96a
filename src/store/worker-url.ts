// Where a worker module sits next to the module that starts it: `.js` in dist/, `.ts` when the
// sources run directly (tests under the TypeScript loader, which workers inherit via execArgv).

export function siblingModule (importMetaUrl: string, base: string): URL {
  return new URL(`./${base}${importMetaUrl.endsWith('.ts') ? '.ts' : '.js'}`, importMetaUrl)
}
