#!/usr/bin/env node
// Does memory that JavaScript touches right after a system call cost more than the same touches
// made in a row? The question behind dns/udp-turn.ts (datagrams handled after the reading, not
// between the reads). Each iteration makes one cheap system call (getrusage, through
// process.cpuUsage) and reads 512 ints: "interleaved" does the two in turn, "in a row" makes all
// the calls first, then all the reads; the difference is what a system call costs the memory
// reads after it. Two shapes: one int per 4 KB page (512 pages: the TLB and the caches), and one
// int per 64-byte line (512 lines on 8 pages: mostly the caches).
//   taskset -c 0 node bench/after-syscall.mjs [ITERATIONS=20000]
const N = Number(process.argv[2] ?? 20000)
const READS = 512
let sink = 0

function shape (name, strideInts) {
  const arr = new Int32Array(READS * strideInts + 16)
  arr.fill(1)
  const order = Array.from({ length: READS }, (_, i) => i).sort(() => Math.random() - 0.5)
  const idx = Int32Array.from(order, i => i * strideInts)
  const touch = () => { let s = 0; for (let j = 0; j < READS; j++) s += arr[idx[j]]; sink += s }
  const syscall = () => { process.cpuUsage() }
  const interleaved = () => { for (let i = 0; i < N; i++) { syscall(); touch() } }
  const inARow = () => { for (let i = 0; i < N; i++) syscall(); for (let i = 0; i < N; i++) touch() }
  const perIteration = f => { const t = process.hrtime.bigint(); f(); return Number(process.hrtime.bigint() - t) / N }
  for (let r = 0; r < 2; r++) { interleaved(); inARow() } // warm-up: compiled, pages mapped
  const rounds = []
  for (let r = 0; r < 5; r++) rounds.push([perIteration(interleaved), perIteration(inARow)])
  const extra = rounds.map(([a, b]) => a - b).sort((x, y) => x - y)[2]
  console.log(`${name}: per iteration interleaved ${rounds.map(r => r[0].toFixed(0)).join(' ')} ns, in a row ${rounds.map(r => r[1].toFixed(0)).join(' ')} ns; ` +
    `median extra ${extra.toFixed(0)} ns, ${(extra / READS).toFixed(2)} ns per read`)
}

shape('512 reads on 512 pages', 1024)
shape('512 reads on 8 pages  ', 16)
if (sink === 42) console.log('') // keeps the reads from being optimized away
