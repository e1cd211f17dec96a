// What dns-packet's decode() returns beyond @types/dns-packet's DecodedPacket: the header's opcode
// and rcode as names (node_modules/dns-packet/index.js, header.decode), e.g. 'QUERY', 'NXDOMAIN'.
import 'dns-packet'

declare module 'dns-packet' {
  interface DecodedPacket {
    opcode: string
    rcode: string
  }
}
