import t from 'tap'
import { startApiDaemon, call, TOKENS } from './helpers.js'
t.test('smoke', async t => {
  const d = await startApiDaemon()
  t.teardown(() => d.close())
  for (const [m, p, tok, body] of [['GET','/healthz'],['GET','/readyz'],['GET','/metrics',TOKENS.metrics],['GET','/api/v1/status',TOKENS.viewer],['GET','/api/v1/categories',TOKENS.viewer],['POST','/api/v1/rules',TOKENS.admin,{rule:'chat.example.org', comment:'x'}],['GET','/api/v1/rules',TOKENS.viewer],['GET','/api/v1/check?name=chat.example.org',TOKENS.viewer],['GET','/api/v1/audit',TOKENS.admin],['POST','/api/v1/reload',TOKENS.admin],['GET','/api/v1/openapi.json',TOKENS.viewer],['PATCH','/api/v1/categories/zoom',TOKENS.admin,{enabled:true}], ['POST','/api/v1/rules',TOKENS.admin,{rule:'x', bogus: 1}], ['POST','/api/v1/rules',TOKENS.admin,'{bad'], ['POST','/api/v1/rules',TOKENS.admin,{rule:'y.org', kind:'deny'}], ['GET','/api/v1/blocks',TOKENS.viewer]] as any[]) {
    const r = await call(d.base, m, p, { token: tok, body })
    console.log(m, p, r.status, r.text.slice(0, 400))
  }
})
