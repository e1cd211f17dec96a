// Unpredictable 16-bit values for upstream query IDs and socket choice (RFC 5452), drawn from the
// CSPRNG in blocks so a query costs one array read, not one system call.

import { randomFillSync } from 'node:crypto'

export class RandomIds {
  readonly #block = new Uint16Array(4096)
  #next = this.#block.length

  /** A fresh random value in 0..65535. */
  u16 (): number {
    if (this.#next === this.#block.length) {
      randomFillSync(this.#block)
      this.#next = 0
    }
    return this.#block[this.#next++]
  }

  /** A random index in 0..n-1 (n <= 65536; the modulo bias is irrelevant for picking a socket). */
  below (n: number): number {
    return this.u16() % n
  }
}
