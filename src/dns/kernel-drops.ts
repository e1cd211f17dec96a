// Datagrams the kernel threw away on the UDP listener sockets (mostly: the receive buffer was full
// because the event loop did not read in time), from the `drops` column of /proc/net/udp and
// /proc/net/udp6. Read when metrics or status are asked for, never per query. Linux only: where
// /proc cannot be read the figure is unknown (undefined), not zero.

import { readFileSync } from 'node:fs'
import { endianness } from 'node:os'
import { parseIp } from '../policy/names.js'

export interface UdpSocketAddress { readonly family: 4 | 6, readonly host: string, readonly port: number }

export interface ProcUdpSocket { readonly family: 4 | 6, readonly address: bigint, readonly port: number, readonly drops: number }

/**
 * A local address as /proc/net/udp{,6} prints it: the address's 32-bit words, each in the host's
 * byte order, in hex ('0100007F' is 127.0.0.1 on a little-endian machine).
 */
export function procAddress (hex: string, littleEndian = endianness() === 'LE'): bigint {
  let out = ''
  for (let i = 0; i < hex.length; i += 8) {
    const w = hex.slice(i, i + 8)
    out += littleEndian ? w.slice(6, 8) + w.slice(4, 6) + w.slice(2, 4) + w.slice(0, 2) : w
  }
  return BigInt('0x' + out)
}

/** The sockets of one /proc/net/udp{,6} text (header line skipped, unreadable lines ignored). */
export function parseProcNetUdp (text: string, family: 4 | 6, littleEndian = endianness() === 'LE'): ProcUdpSocket[] {
  const out: ProcUdpSocket[] = []
  for (const line of text.split('\n')) {
    const f = line.trim().split(/\s+/)
    // sl local_address rem_address st tx:rx tr:when retrnsmt uid timeout inode ref pointer drops
    if (f.length < 13 || !f[0].endsWith(':')) continue
    const [addr, port] = f[1].split(':')
    const drops = Number(f[12])
    if (port === undefined || !/^[0-9A-Fa-f]+$/.test(addr) || addr.length !== (family === 4 ? 8 : 32) || !Number.isInteger(drops)) continue
    out.push({ family, address: procAddress(addr, littleEndian), port: parseInt(port, 16), drops })
  }
  return out
}

/**
 * The kernel's drops on each of the given bound sockets (in their order): undefined for a socket
 * when /proc cannot be read or the socket is not found there.
 */
export function udpKernelDrops (sockets: readonly UdpSocketAddress[], read: (path: string) => string = p => readFileSync(p, 'latin1')): Array<number | undefined> {
  const tables = new Map<4 | 6, ProcUdpSocket[] | undefined>()
  return sockets.map(s => {
    if (!tables.has(s.family)) {
      let table: ProcUdpSocket[] | undefined
      try {
        table = parseProcNetUdp(read(s.family === 4 ? '/proc/net/udp' : '/proc/net/udp6'), s.family)
      } catch {
        table = undefined
      }
      tables.set(s.family, table)
    }
    const ip = parseIp(s.host)
    return ip === undefined ? undefined : tables.get(s.family)?.find(r => r.port === s.port && r.address === ip.value)?.drops
  })
}
