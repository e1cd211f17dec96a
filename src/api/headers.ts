// Security headers on every response, errors and 404s included. JSON gets a Content-Security-Policy
// that allows nothing at all; the /docs page may load its own script and style (same origin, no
// inline code, no CDN) and fetch the OpenAPI document.

import type { FastifyInstance } from 'fastify'

export const CSP_JSON = "default-src 'none'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'"
export const CSP_DOCS = "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self' data:; " +
  "frame-ancestors 'none'; base-uri 'none'; form-action 'none'"

export function installSecurityHeaders (app: FastifyInstance, tls: boolean): void {
  app.addHook('onSend', async (req, reply, payload) => {
    void reply.headers({
      'x-content-type-options': 'nosniff',
      'cache-control': 'no-store',
      'x-frame-options': 'DENY',
      'referrer-policy': 'no-referrer',
      'cross-origin-opener-policy': 'same-origin',
      'cross-origin-resource-policy': 'same-origin',
      'content-security-policy': req.routeOptions.config?.csp === 'docs' ? CSP_DOCS : CSP_JSON,
      ...(tls && { 'strict-transport-security': 'max-age=31536000' })
    })
    return payload
  })
}
