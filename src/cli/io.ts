// What every CLI command gets from the entry point (src/cli.ts): its output streams, whether stdout
// is a terminal, the environment, the clock and where the installation's lists are. Commands take
// this object instead of reaching for process.*, so tests can run them in-process.

export interface CliIo {
  /** Writes to stdout; throws StdoutClosed once the reader is gone (`| head`). */
  readonly out: (text: string) => void
  /** Writes to stderr: messages about how the command ran (config used, notes, warnings). */
  readonly err: (text: string) => void
  /** Whether stdout is a terminal (tables) or a pipe/file (JSON). */
  readonly isTTY: boolean
  readonly env: NodeJS.ProcessEnv
  readonly now: () => number
  /** The lists shipped with egressd, in its installation: blocklists.dir when the config sets none. */
  readonly bundledBlocklistsDir: string
}

/** Thrown by CliIo.out once stdout is closed: stops the output loop; the command ends with exit 0. */
export class StdoutClosed extends Error {}
