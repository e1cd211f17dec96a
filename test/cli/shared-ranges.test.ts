// check-config with firewall.sharedRanges (a real config file, through dist/cli.js): an opted-in
// category's shared ranges are named with what else they cut off; a name that is no category, or a
// category without shared-ranges.txt, is an error naming firewall.sharedRanges. Needs dist/.

import t from 'tap'
import { spawnSync } from 'node:child_process'
import { writeFileSync } from 'node:fs'
import { join, resolve } from 'node:path'
import { tempDir } from '../helpers/tmp.js'

const CLI = resolve(import.meta.dirname, '..', '..', 'dist', 'cli.js')
const dir = tempDir('egressd-cli-shared-')

function checkConfig (name: string, sharedRanges: string[], categories: Record<string, unknown> = {}): { status: number | null, stdout: string, stderr: string } {
  const file = join(dir, name)
  writeFileSync(file, `upstreams: [udp://127.0.0.1:9]\ndataDir: data-${name}\nfirewall:\n  sharedRanges: ${JSON.stringify(sharedRanges)}\nblocklists:\n  categories: ${JSON.stringify(categories)}\n`)
  const env: NodeJS.ProcessEnv = { ...process.env, EGRESSD_ETC_DIR: dir }
  delete env.EGRESSD_CONFIG
  return spawnSync(process.execPath, [CLI, 'check-config', file], { encoding: 'utf8', timeout: 20_000, env })
}

t.test('check-config names what the opted-in shared ranges cut off', async t => {
  const on = checkConfig('on.yaml', ['whatsapp'])
  t.equal(on.status, 0, on.stdout + on.stderr)
  t.match(on.stdout, /^note: firewall\.sharedRanges: whatsapp's shared ranges are on \(24 ranges, .*blocklists\/whatsapp\/shared-ranges\.txt\): they also cut off Facebook, Instagram, Messenger, Threads/m)

  const off = checkConfig('off.yaml', [])
  t.equal(off.status, 0, off.stdout + off.stderr)
  t.notMatch(off.stdout, /sharedRanges/)
})

t.test('check-config: an unknown category or one without shared ranges is an error naming firewall.sharedRanges', async t => {
  const unknown = checkConfig('unknown.yaml', ['whatsapp', 'whatsap'])
  t.equal(unknown.status, 1, unknown.stdout)
  t.match(unknown.stdout, /^config firewall\.sharedRanges\.1: no such category "whatsap" \(known: /m)

  const none = checkConfig('none.yaml', ['telegram'])
  t.equal(none.status, 1, none.stdout)
  t.match(none.stdout, /^config firewall\.sharedRanges\.0: category "telegram" ships no shared-ranges\.txt \(categories with shared ranges: whatsapp\)$/m)

  const disabled = checkConfig('disabled.yaml', ['whatsapp'], { whatsapp: { enabled: false } })
  t.equal(disabled.status, 3, disabled.stdout)
  t.match(disabled.stdout, /^warning: config firewall\.sharedRanges\.0: category "whatsapp" is off in every client group: its shared ranges stay off$/m)
})
