// The argument parser of every `egressd` subcommand: node's util.parseArgs, except that an option
// that takes a value also takes one starting with "-" when it comes as the next argument
// (`--from -24h`, `-c -odd.yaml`), not only as `--from=-24h`. parseArgs alone rejects the first form
// as ambiguous, yet the README and the usage text write relative times that way.

import { parseArgs, type ParseArgsConfig } from 'node:util'

type Options = NonNullable<ParseArgsConfig['options']>

/**
 * Rewrites `--name VALUE` and `-n VALUE` to `--name=VALUE` when the option takes a string and VALUE
 * starts with "-". A VALUE that is itself one of the command's options (`--from --to`) is left
 * alone, so a forgotten value is still reported as missing. Arguments after `--` are untouched.
 */
export function joinDashValues (args: readonly string[], options: Options): string[] {
  const long = (token: string): string | undefined => {
    if (/^--[^=]+$/.test(token)) return Object.hasOwn(options, token.slice(2)) ? token.slice(2) : undefined
    if (/^-[^-]$/.test(token)) return Object.keys(options).find(k => options[k].short === token[1])
    return undefined
  }
  const isOption = (token: string): boolean => token === '--' || long(token) !== undefined ||
    (token.startsWith('--') && Object.hasOwn(options, token.slice(2, token.indexOf('='))))
  const out: string[] = []
  for (let i = 0; i < args.length; i++) {
    const a = args[i]
    if (a === '--') { out.push(...args.slice(i)); break }
    const name = long(a)
    const next = args[i + 1]
    if (name !== undefined && options[name].type === 'string' && next !== undefined && next.startsWith('-') && !isOption(next)) {
      out.push(`--${name}=${next}`)
      i++
    } else {
      out.push(a)
    }
  }
  return out
}

/** util.parseArgs over `joinDashValues(args)`. */
export function parseCliArgs<T extends ParseArgsConfig & { args: string[], options: Options }> (config: T): ReturnType<typeof parseArgs<T>> {
  return parseArgs({ ...config, args: joinDashValues(config.args, config.options) })
}
