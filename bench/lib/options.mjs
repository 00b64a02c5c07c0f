// Command-line options of the bench scripts: util.parseArgs plus the checks
// the scripts share, each failing with the script's name, the option and
// what was wrong, and exit code 2.
import { parseArgs } from 'node:util'

/** Parses `options` (parseArgs' format); returns the values and the checks. */
export function parseOptions(script, options) {
  const { values } = parseArgs({ options })
  const usage = (message) => {
    console.error(`${script}: ${message}`)
    process.exit(2)
  }
  return {
    values,
    usage,
    /** --name as an integer >= min. */
    integer(name, min) {
      const n = Number(values[name])
      if (!Number.isInteger(n) || n < min) usage(`--${name} must be an integer >= ${min}, got ${values[name]}`)
      return n
    },
    /** --name as a comma-separated subset of `known`, in `known`'s order. */
    list(name, known) {
      const items = values[name].split(',').map((s) => s.trim()).filter(Boolean)
      const unknown = items.filter((s) => !known.includes(s))
      if (unknown.length || items.length === 0) usage(`--${name}: unknown ${unknown.join(', ') || '(empty)'}; known: ${known.join(', ')}`)
      return known.filter((k) => items.includes(k))
    },
  }
}
