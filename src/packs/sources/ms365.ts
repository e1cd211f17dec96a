// Microsoft 365 endpoints: the answer of Microsoft's endpoints web service
// (https://endpoints.office.com/endpoints/worldwide?clientrequestid=GUID), a JSON array of endpoint
// sets, each with an id, a service area (Exchange, SharePoint, Skype, Common), a category
// (Optimize, Allow, Default), `required`, optional `notes`, host names (`urls`) and address
// ranges (`ips`). Microsoft writes host names exactly or as `*.name` (names strictly under name);
// patterns with a wildcard anywhere else (`*cdn.onenote.net`, `autodiscover.*.onmicrosoft.com`)
// cannot be matched by a name rule and are dropped with the reason.

import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { parseCidr, toName } from '../../policy/names.js'
import { readJson, type JsonNode } from './json-lines.js'
import type { SourceDrop, SourceEntry, SourceIssue, SourceList } from './types.js'

/** A saved endpoints answer in an upstream copy laid out like sources/ (`lists extract --from DIR`; not kept in the repository). */
export const MS365_FILE = 'ms365/worldwide.json'

export const MS365_CATEGORIES = ['Optimize', 'Allow', 'Default'] as const
export type Ms365Category = typeof MS365_CATEGORIES[number]

/**
 * Which endpoint sets to take: those whose id is in `ids` or whose service area is in
 * `serviceAreas` (case-insensitive); with neither given, every set. `ips: false` leaves the
 * address ranges out (host names only).
 */
export interface Ms365Select {
  readonly serviceAreas?: readonly string[]
  readonly ids?: readonly number[]
  readonly ips?: boolean
}

/** One endpoint set as Microsoft publishes it, with its counts: what the set is and who else uses it. */
export interface Ms365Set {
  readonly id: number
  readonly serviceArea: string
  readonly serviceAreaDisplayName: string | undefined
  readonly category: Ms365Category
  readonly required: boolean
  /** Microsoft's `notes` ('' when absent): often what else relies on the set. */
  readonly notes: string
  readonly urls: number
  readonly ips: number
  readonly tcpPorts: string | undefined
  readonly udpPorts: string | undefined
  /** Line of the set's opening brace. */
  readonly line: number
}

interface RawSet {
  readonly set: Ms365Set
  readonly urls: ReadonlyArray<{ readonly value: string, readonly line: number }>
  readonly ips: ReadonlyArray<{ readonly value: string, readonly line: number }>
}

/** The endpoint sets of a document, and what is wrong with it (a set that is malformed is left out). */
function readSets (text: string, file: string, issues: SourceIssue[]): RawSet[] {
  const doc = readJson(text)
  if ('error' in doc) { issues.push({ file, line: doc.line, message: doc.error }); return [] }
  if (doc.node.kind !== 'array') {
    issues.push({ file, line: doc.node.line, message: `expected a JSON array of endpoint sets, got ${doc.node.kind === 'object' ? 'an object' : `a ${doc.node.kind}`}` })
    return []
  }
  const out: RawSet[] = []
  for (const item of doc.node.items) {
    if (item.kind !== 'object') { issues.push({ file, line: item.line, message: `an endpoint set must be an object, got a ${item.kind}` }); continue }
    const problem = (message: string, at: JsonNode = item): void => { issues.push({ file, line: at.line, message }) }
    const get = (k: string): JsonNode | undefined => item.entries.get(k)
    const id = get('id')
    if (id?.kind !== 'number' || !Number.isInteger(id.value) || id.value < 0) { problem('endpoint set without an integer "id"', id); continue }
    const where = `endpoint set ${id.value}`
    const area = get('serviceArea')
    if (area?.kind !== 'string' || area.value === '') { problem(`${where}: "serviceArea" must be a non-empty string`, area); continue }
    const category = get('category')
    if (category?.kind !== 'string' || !(MS365_CATEGORIES as readonly string[]).includes(category.value)) {
      problem(`${where}: "category" must be one of ${MS365_CATEGORIES.join(', ')}`, category)
      continue
    }
    const required = get('required')
    if (required?.kind !== 'boolean') { problem(`${where}: "required" must be true or false`, required); continue }
    const optionalString = (k: string): string | undefined | null => {
      const v = get(k)
      if (v === undefined) return undefined
      if (v.kind === 'string') return v.value
      problem(`${where}: "${k}" must be a string`, v)
      return null
    }
    const displayName = optionalString('serviceAreaDisplayName')
    const notes = optionalString('notes')
    const tcpPorts = optionalString('tcpPorts')
    const udpPorts = optionalString('udpPorts')
    const strings = (k: string): Array<{ value: string, line: number }> => {
      const v = get(k)
      if (v === undefined) return []
      if (v.kind !== 'array') { problem(`${where}: "${k}" must be an array of strings`, v); return [] }
      const list: Array<{ value: string, line: number }> = []
      for (const s of v.items) {
        if (s.kind === 'string') list.push({ value: s.value, line: s.line })
        else problem(`${where}: "${k}" holds a ${s.kind}, not a string`, s)
      }
      return list
    }
    const urls = strings('urls')
    const ips = strings('ips')
    out.push({
      set: {
        id: id.value,
        serviceArea: area.value,
        serviceAreaDisplayName: displayName ?? undefined,
        category: category.value as Ms365Category,
        required: required.value,
        notes: notes ?? '',
        urls: urls.length,
        ips: ips.length,
        tcpPorts: tcpPorts ?? undefined,
        udpPorts: udpPorts ?? undefined,
        line: item.line
      },
      urls,
      ips
    })
  }
  return out
}

function selected (set: Ms365Set, select: Ms365Select): boolean {
  const areas = select.serviceAreas ?? []
  const ids = select.ids ?? []
  if (areas.length === 0 && ids.length === 0) return true
  if (ids.includes(set.id)) return true
  const area = set.serviceArea.toLowerCase()
  return areas.some(a => a.toLowerCase() === area)
}

/**
 * The entries of the selected endpoint sets of one endpoints document (`text`, read from `file`,
 * a path relative to the sources folder used in every entry, drop and issue). Never throws.
 */
export function parseMs365 (text: string, file: string, select: Ms365Select = {}): SourceList {
  const entries: SourceEntry[] = []
  const dropped: SourceDrop[] = []
  const issues: SourceIssue[] = []
  for (const { set, urls, ips } of readSets(text, file, issues)) {
    if (!selected(set, select)) continue
    const attrs = [`id:${set.id}`, `serviceArea:${set.serviceArea}`, `category:${set.category}`, `required:${String(set.required)}`]
    for (const u of urls) {
      const star = u.value.indexOf('*')
      const wildcard = u.value.startsWith('*.') && u.value.indexOf('*', 1) < 0
      if (star >= 0 && !wildcard) {
        dropped.push({ file, line: u.line, text: u.value, reason: "a wildcard inside the name (only a leading '*.' can be matched by a name rule)" })
        continue
      }
      const name = toName(wildcard ? u.value.slice(2) : u.value)
      if (typeof name !== 'string') { issues.push({ file, line: u.line, message: `endpoint set ${set.id}: url '${u.value}': ${name.error}` }); continue }
      entries.push({ kind: wildcard ? 'wildcard' : 'full', value: name, file, line: u.line, attrs })
    }
    for (const ip of ips) {
      const c = parseCidr(ip.value)
      if ('error' in c) { issues.push({ file, line: ip.line, message: `endpoint set ${set.id}: ip '${ip.value}': ${c.error}` }); continue }
      if (select.ips === false) continue
      entries.push({ kind: 'cidr', value: c.value, file, line: ip.line, attrs })
    }
  }
  return { entries, dropped, issues }
}

/** Every endpoint set of one endpoints document, in Microsoft's order, and what is malformed in it. */
export function ms365SetsOf (text: string, file: string): { readonly sets: Ms365Set[], readonly issues: SourceIssue[] } {
  const issues: SourceIssue[] = []
  const sets = readSets(text, file, issues).map(r => r.set)
  return { sets, issues }
}

function readSource (sourcesDir: string): { text: string } | { issue: SourceIssue } {
  try {
    return { text: readFileSync(join(sourcesDir, MS365_FILE), 'utf8') }
  } catch (err) {
    return { issue: { file: MS365_FILE, line: 0, message: `cannot read: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}` } }
  }
}

/** The entries of the selected endpoint sets of a saved answer (`<sourcesDir>/ms365/worldwide.json`). */
export function readMs365 (sourcesDir: string, select: Ms365Select = {}): SourceList {
  const r = readSource(sourcesDir)
  if ('issue' in r) return { entries: [], dropped: [], issues: [r.issue] }
  return parseMs365(r.text, MS365_FILE, select)
}

/**
 * Every endpoint set of a saved answer with its notes and counts: what the lead records as
 * "what else Microsoft says uses" a set.
 */
export function listMs365Sets (sourcesDir: string): { readonly sets: Ms365Set[], readonly issues: SourceIssue[] } {
  const r = readSource(sourcesDir)
  if ('issue' in r) return { sets: [], issues: [r.issue] }
  return ms365SetsOf(r.text, MS365_FILE)
}
