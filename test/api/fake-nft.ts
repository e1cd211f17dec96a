// A fake `nft` for fault injection in API tests: put first on PATH while a daemon with
// firewall.sync runs in this process, so the daemon's full syncs, learned-set element batches and
// evidence reads go to it (never to the real nft, never to the host's ruleset). Full table syncs
// succeed; element batches (`add element ...`) fail as nft does without the table; `-j list set
// inet TABLE SET` prints the JSON the test wrote for SET, and fails as nft does for a set the test
// did not write. Every call's arguments are appended to calls.log.

import { readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { tempDir } from '../helpers/tmp.js'

export interface FakeNft {
  readonly dir: string
  /** The arguments of every call so far, one string each. */
  calls: () => string[]
  /** What `nft -j list set` prints for `set` from now on: the set with these elements. */
  writeSet: (set: string, elements: unknown[]) => void
  /** Puts PATH back as it was. */
  restore: () => void
}

export const ELEMENT_BATCH_ERROR = 'Error: Could not process rule: No such file or directory (fake nft)'

export function installFakeNft (): FakeNft {
  const dir = tempDir('egressd-fake-nft-')
  const log = join(dir, 'calls.log')
  writeFileSync(log, '')
  writeFileSync(join(dir, 'nft'), `#!/bin/sh
echo "$*" >> '${log}'
if [ "$1" = "-j" ] && [ "$2" = "list" ]; then
  for a; do last=$a; done
  if [ -f '${dir}/'"$last.json" ]; then cat '${dir}/'"$last.json"; exit 0; fi
  echo "Error: No such file or directory; did you mean set $last? (fake nft)" >&2
  exit 1
fi
if [ "$1" = "-f" ]; then
  script=$(cat)
  case "$script" in
    *"add element"*) echo '${ELEMENT_BATCH_ERROR}' >&2; exit 1 ;;
  esac
  exit 0
fi
echo "fake nft: unexpected arguments $*" >&2
exit 1
`, { mode: 0o755 })
  const path = process.env.PATH
  process.env.PATH = `${dir}:${path ?? ''}`
  return {
    dir,
    calls: () => readFileSync(log, 'utf8').split('\n').filter(Boolean),
    writeSet: (set, elements) => {
      writeFileSync(join(dir, `${set}.json`), JSON.stringify({ nftables: [{ metainfo: { version: '1.0.6' } }, { set: { name: set, handle: 1, elem: elements } }] }))
    },
    restore: () => { process.env.PATH = path }
  }
}

/**
 * What the reject rules leave when `client` tried `destination` (TCP `port`) `packets` times and
 * the set tagged `tag` rejected it: the counted element of evidence_v4/_v6 (client . destination .
 * proto . tag) and the port sample of evidence_ports_v4/_v6 (client . destination . proto . port).
 */
export function evidenceElements (client: string, destination: string, port: number, tag: number, packets: number): { counted: unknown, port: unknown } {
  return {
    counted: { elem: { val: { concat: [client, destination, 'tcp', tag] }, expires: 900, counter: { packets, bytes: packets * 60 } } },
    port: { elem: { val: { concat: [client, destination, 'tcp', port] }, expires: 55 } }
  }
}
