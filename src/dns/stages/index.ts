// The stages of the DNS query path, one per file, each `(next) => (ctx) => Outcome | PENDING`
// (../contract.ts); ../pipeline.ts composes them, in order, once. A stage imports the contract,
// the wire format, the cache, metrics and the policy types; never the listener, the pipeline or
// another stage. Each has table-driven tests in test/dns/stages/ with a fake `next`.

export { clientAclStage } from './client-acl.js'
export { localAnswersStage } from './local-answers.js'
export { observeStage } from './observe.js'
export { answerPolicyStage, type AllowedAnswer } from './answer-policy.js'
export { cacheStage } from './cache.js'
export { queryPolicyStage } from './query-policy.js'
export { coalesceStage } from './coalesce.js'
export { forward } from './forward.js'
