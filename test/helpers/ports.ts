// A port number free for both UDP and TCP on a loopback address, for servers that need one up front.

import dgram from 'node:dgram'
import net from 'node:net'

export async function freePort (host = '127.0.0.1'): Promise<number> {
  for (let attempt = 0; attempt < 20; attempt++) {
    const srv = net.createServer()
    const port = await new Promise<number>((resolve, reject) => {
      srv.once('error', reject)
      srv.listen(0, host, () => resolve((srv.address() as net.AddressInfo).port))
    })
    const udp = dgram.createSocket(host.includes(':') ? 'udp6' : 'udp4')
    const ok = await new Promise<boolean>(resolve => {
      udp.once('error', () => resolve(false))
      udp.bind(port, host, () => resolve(true))
    })
    await new Promise<void>(resolve => srv.close(() => resolve()))
    if (ok) { await new Promise<void>(resolve => udp.close(() => resolve())); return port }
    udp.close()
  }
  throw new Error('no free port found')
}
