// GET /api/v1/openapi.json (viewer): the OpenAPI 3 document generated from the route schemas.
// GET /docs (no token): a small self-contained page that renders it (own script and style, same
// origin, no CDN, works offline); it asks for a token to fetch the document, and keeps it only in
// the page's memory.

import { Type } from '@sinclair/typebox'
import type { FastifyPluginAsync } from 'fastify'
import type { RouteContext } from '../context.js'
import { errors } from '../schemas.js'

const PAGE = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>egressd management API</title>
<link rel="stylesheet" href="/docs/docs.css">
<script src="/docs/docs.js" defer></script>
</head>
<body>
<header>
  <h1>egressd management API</h1>
  <form id="auth">
    <label>Bearer token (viewer or admin) <input id="token" type="password" autocomplete="off" size="48"></label>
    <button type="submit">Load</button>
    <a href="/api/v1/openapi.json">openapi.json</a>
  </form>
  <p id="status">Enter a token to load the API description.</p>
</header>
<main id="doc"></main>
</body>
</html>
`

const CSS = `body { font: 15px/1.45 system-ui, sans-serif; margin: 0; color: #1b1f24; background: #fafbfc; }
header { padding: 1rem 2rem; background: #1f3a5f; color: #fff; }
header h1 { margin: 0 0 .5rem; font-size: 1.4rem; }
header a { color: #cde; margin-left: 1rem; }
#status { margin: .5rem 0 0; opacity: .85; }
main { padding: 1rem 2rem 3rem; max-width: 70rem; }
h2 { border-bottom: 1px solid #ccd; padding-bottom: .2rem; margin-top: 2rem; }
details.op { background: #fff; border: 1px solid #d8dde3; border-radius: 6px; margin: .5rem 0; }
details.op summary { cursor: pointer; padding: .5rem .75rem; }
details.op .body { padding: 0 1rem 1rem; }
.method { display: inline-block; min-width: 4.5rem; font-weight: 700; font-family: ui-monospace, monospace; }
.GET { color: #0b6e4f; } .POST { color: #1d4ed8; } .PATCH { color: #9a6700; } .DELETE { color: #b42318; }
.path { font-family: ui-monospace, monospace; }
.role { float: right; font-size: .8rem; background: #eef; border-radius: 4px; padding: 0 .4rem; }
pre { background: #f3f5f7; padding: .5rem; overflow-x: auto; font-size: 13px; }
table { border-collapse: collapse; } td, th { border: 1px solid #d8dde3; padding: .2rem .5rem; text-align: left; vertical-align: top; }
`

const SCRIPT = `'use strict'
;(function () {
  const $ = id => document.getElementById(id)
  const el = (tag, attrs, ...children) => {
    const e = document.createElement(tag)
    for (const [k, v] of Object.entries(attrs || {})) e.setAttribute(k, v)
    for (const c of children) e.append(c)
    return e
  }
  const resolve = (doc, s) => {
    for (let i = 0; s && s.$ref && i < 10; i++) {
      s = s.$ref.replace(/^#\\//, '').split('/').reduce((o, k) => (o || {})[k], doc)
    }
    return s
  }
  const render = doc => {
    const main = $('doc')
    main.textContent = ''
    main.append(el('p', {}, doc.info.description || ''), el('p', {}, 'Version ' + doc.info.version))
    const byTag = new Map()
    for (const [path, item] of Object.entries(doc.paths || {})) {
      for (const [method, op] of Object.entries(item)) {
        const tag = (op.tags && op.tags[0]) || 'other'
        if (!byTag.has(tag)) byTag.set(tag, [])
        byTag.get(tag).push({ path, method: method.toUpperCase(), op })
      }
    }
    for (const [tag, ops] of byTag) {
      main.append(el('h2', {}, tag))
      for (const { path, method, op } of ops) {
        const role = (/Role: ([^.]+)\\./.exec(op.description || '') || [])[1] || ''
        const body = el('div', { class: 'body' })
        if (op.description) body.append(el('p', {}, op.description))
        if (op.parameters && op.parameters.length > 0) {
          const t = el('table', {}, el('tr', {}, el('th', {}, 'parameter'), el('th', {}, 'in'), el('th', {}, 'schema'), el('th', {}, 'description')))
          for (const p of op.parameters) {
            t.append(el('tr', {}, el('td', {}, p.name + (p.required ? ' *' : '')), el('td', {}, p.in), el('td', {}, el('pre', {}, JSON.stringify(p.schema))), el('td', {}, p.description || '')))
          }
          body.append(t)
        }
        const rb = op.requestBody && op.requestBody.content && op.requestBody.content['application/json']
        if (rb) body.append(el('h4', {}, 'Request body (application/json)'), el('pre', {}, JSON.stringify(resolve(doc, rb.schema), null, 2)))
        for (const [code, r] of Object.entries(op.responses || {})) {
          const c = r.content && Object.values(r.content)[0]
          body.append(el('h4', {}, 'Response ' + code), el('pre', {}, c ? JSON.stringify(resolve(doc, c.schema), null, 2) : r.description || ''))
        }
        main.append(el('details', { class: 'op' },
          el('summary', {}, el('span', { class: 'method ' + method }, method), ' ', el('span', { class: 'path' }, path), ' — ', op.summary || '', el('span', { class: 'role' }, role)),
          body))
      }
    }
  }
  $('auth').addEventListener('submit', ev => {
    ev.preventDefault()
    $('status').textContent = 'Loading…'
    fetch('/api/v1/openapi.json', { headers: { authorization: 'Bearer ' + $('token').value } })
      .then(r => r.ok ? r.json() : r.json().then(e => { throw new Error(e.message || r.statusText) }))
      .then(doc => { $('status').textContent = doc.info.title; render(doc) })
      .catch(err => { $('status').textContent = 'Could not load the document: ' + err.message })
  })
})()
`

export const docsRoutes: FastifyPluginAsync<RouteContext> = async app => {
  app.get('/api/v1/openapi.json', {
    config: { role: 'viewer' },
    schema: {
      tags: ['docs'],
      summary: 'This API as an OpenAPI 3 document',
      querystring: Type.Object({}, { additionalProperties: false }),
      response: { 200: Type.Object({}, { additionalProperties: true }), ...errors(400) }
    }
  }, async () => app.swagger())

  const asset = (url: string, type: string, text: string): void => {
    app.get(url, { config: { role: 'public', csp: 'docs' }, schema: { hide: true } }, async (_req, reply) => reply.type(type).send(text))
  }
  asset('/docs', 'text/html; charset=utf-8', PAGE)
  asset('/docs/docs.js', 'text/javascript; charset=utf-8', SCRIPT)
  asset('/docs/docs.css', 'text/css; charset=utf-8', CSS)
}
