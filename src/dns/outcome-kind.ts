// What became of a query the pipeline decided: the kinds of Outcome (contract.ts) that DnsMetrics
// counts and AnswerTimes times. A leaf module, so that metrics, answer times and the contract can
// all name the kinds without importing each other.

export type OutcomeKind = 'cached' | 'resolved' | 'blocked' | 'servfail' | 'refused'
export const OUTCOME_KINDS: readonly OutcomeKind[] = ['cached', 'resolved', 'blocked', 'servfail', 'refused']
