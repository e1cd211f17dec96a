// Raw HTTP/1.1 clients for the hostile API tests: a request on a plain TCP socket from a chosen
// loopback source address (127.0.0.2, 127.0.0.3, ... are other "clients" to the API's per-address
// limits), whose response the test reads only when it wants to (a paused socket reads nothing, so
// the kernel buffers fill and the server has to hold or drop what it writes).

import http from 'node:http'
import net from 'node:net'
import vm from 'node:vm'
import v8 from 'node:v8'

export interface RawResponse {
  readonly status: number
  readonly head: string
  /** Body bytes that arrived with the head (or the whole body of a non-200 answer). */
  readonly body: string
  readonly socket: net.Socket
}

/** Connects from `localAddress` to the API. */
export function connect (port: number, localAddress: string): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    const s = net.connect({ host: '127.0.0.1', port, localAddress })
    s.once('connect', () => { s.off('error', reject); resolve(s) })
    s.once('error', reject)
  })
}

/**
 * Sends `GET path` and reads the status line and headers; a 200 leaves the socket paused right
 * after them (the caller decides whether to read on), any other status is read to its end.
 */
export async function rawGet (port: number, localAddress: string, path: string, token: string): Promise<RawResponse> {
  const s = await connect(port, localAddress)
  s.setEncoding('latin1')
  s.write(`GET ${path} HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer ${token}\r\n\r\n`)
  return await new Promise((resolve, reject) => {
    let buf = ''
    const timer = setTimeout(() => { s.destroy(); reject(new Error(`GET ${path} from ${localAddress}: no answer in 5 s`)) }, 5000)
    const done = (r: RawResponse): void => { clearTimeout(timer); s.off('data', onData); s.off('error', onError); resolve(r) }
    const onError = (err: Error): void => { clearTimeout(timer); reject(err) }
    const onData = (d: string): void => {
      buf += d
      const end = buf.indexOf('\r\n\r\n')
      if (end < 0) return
      const head = buf.slice(0, end)
      const status = Number(/^HTTP\/1\.1 (\d{3})/.exec(head)?.[1] ?? 0)
      const body = buf.slice(end + 4)
      if (status === 200) { s.pause(); done({ status, head, body, socket: s }); return }
      const length = Number(/\r\ncontent-length: *(\d+)/i.exec(head)?.[1] ?? -1)
      if (length >= 0 && Buffer.byteLength(body, 'latin1') >= length) done({ status, head, body, socket: s })
    }
    s.on('data', onData)
    s.on('error', onError)
  })
}

/** Reads everything the socket still gets until the server closes it (or `timeoutMs` passes). */
export function readToEnd (s: net.Socket, timeoutMs: number): Promise<{ text: string, ended: boolean }> {
  return new Promise(resolve => {
    let text = ''
    const finish = (ended: boolean): void => { clearTimeout(timer); resolve({ text, ended }) }
    const timer = setTimeout(() => finish(false), timeoutMs)
    s.on('data', (d: string) => { text += d })
    s.once('end', () => finish(true))
    s.once('close', () => finish(true))
    s.on('error', () => { /* a reset ends it too: 'close' follows */ })
    s.resume()
  })
}

/** One GET on a fresh connection from `localAddress`: status and body (fails after 3 s). */
export function get (port: number, path: string, token?: string, localAddress = '127.0.0.1'): Promise<{ status: number, body: string }> {
  return new Promise((resolve, reject) => {
    const headers: Record<string, string> = token === undefined ? {} : { authorization: `Bearer ${token}` }
    const req = http.request({ host: '127.0.0.1', port, path, localAddress, agent: false, timeout: 3000, headers }, res => {
      let body = ''
      res.setEncoding('utf8')
      res.on('data', d => { body += d })
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }))
    })
    req.on('timeout', () => req.destroy(new Error(`GET ${path}: no answer in 3 s`)))
    req.on('error', reject)
    req.end()
  })
}

/** A sample value from a Prometheus text exposition (0 when the series is absent). */
export function metric (text: string, series: string): number {
  for (const line of text.split('\n')) {
    if (line.startsWith(series + ' ')) return Number(line.slice(series.length + 1))
  }
  return 0
}

/** Forces a full garbage collection (the flag is set at run time: tests run without --expose-gc). */
export function collectGarbage (): void {
  v8.setFlagsFromString('--expose-gc')
  const gc = vm.runInNewContext('gc') as () => void
  gc()
}

/** JavaScript heap and off-heap buffers in use, after a full collection. */
export function usedMemory (): number {
  collectGarbage()
  const m = process.memoryUsage()
  return m.heapUsed + m.external
}

export const sleep = (ms: number): Promise<void> => new Promise(resolve => setTimeout(resolve, ms))
