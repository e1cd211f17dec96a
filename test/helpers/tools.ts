// System tools the integration tests drive (dig, dnsmasq). A missing tool is a test failure with
// the Debian package to install, never a skip (.ci/run installs them).

import { execFileSync } from 'node:child_process'

const PACKAGES: Record<string, string> = { dig: 'bind9-dnsutils', dnsmasq: 'dnsmasq', nft: 'nftables', promtool: 'prometheus' }

export function requireTool (name: string): string {
  for (const dir of ['/usr/bin', '/usr/sbin', '/bin', '/sbin', '/usr/local/bin', '/usr/local/sbin']) {
    try {
      execFileSync('test', ['-x', `${dir}/${name}`])
      return `${dir}/${name}`
    } catch { /* next */ }
  }
  throw new Error(`${name} is not installed: apt-get install ${PACKAGES[name] ?? name}`)
}
