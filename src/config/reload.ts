// What a reload did, counted by trigger and outcome (rendered by /metrics as
// egressd_config_reloads_total{trigger,outcome}).

export type ReloadTrigger = 'signal' | 'api'
/** applied: something changed and took effect; unchanged: the config was the same; rejected: invalid, nothing changed. */
export type ReloadOutcome = 'applied' | 'unchanged' | 'rejected'
export const RELOAD_TRIGGERS: readonly ReloadTrigger[] = ['signal', 'api']
export const RELOAD_OUTCOMES: readonly ReloadOutcome[] = ['applied', 'unchanged', 'rejected']

export interface ReloadCounters {
  readonly counts: Record<ReloadTrigger, Record<ReloadOutcome, number>>
  /** When the last reload that applied something finished (ms), or undefined. */
  lastAppliedAt: number | undefined
}

export function newReloadCounters (): ReloadCounters {
  const zero = (): Record<ReloadOutcome, number> => ({ applied: 0, unchanged: 0, rejected: 0 })
  return { counts: { signal: zero(), api: zero() }, lastAppliedAt: undefined }
}
