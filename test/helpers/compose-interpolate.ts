// The subset of compose's variable substitution our docker-compose.yml uses: ${VAR}, ${VAR:-default} and
// ${VAR:?error}. An unset or empty VAR takes the default; with :? it is an error, as in compose itself.
// Like compose, the file is parsed first and substitution applies to string values, so `KEY: ${UNSET:-}`
// is an empty string, not YAML null.
import { parse } from 'yaml'

export function interpolate (text: string, env: Record<string, string | undefined>): string {
  return text.replace(/\$\{([A-Za-z_][A-Za-z0-9_]*)(?:(:-|:\?)([^}]*))?\}/g, (_whole, name: string, operator?: string, argument?: string) => {
    const value = env[name]
    if (value !== undefined && value !== '') return value
    if (operator === ':?') throw new Error(`required variable ${name} is missing a value: ${argument}`)
    if (operator === ':-') return argument ?? ''
    return ''
  })
}

function substitute (node: unknown, env: Record<string, string | undefined>): unknown {
  if (typeof node === 'string') return interpolate(node, env)
  if (Array.isArray(node)) return node.map((item) => substitute(item, env))
  if (node !== null && typeof node === 'object') {
    return Object.fromEntries(Object.entries(node).map(([key, value]) => [key, substitute(value, env)]))
  }
  return node
}

/** Parses a compose file and resolves its substitutions against env, the way compose does. */
export function loadCompose (text: string, env: Record<string, string | undefined>): unknown {
  return substitute(parse(text), env)
}
