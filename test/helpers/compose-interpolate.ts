// The subset of compose's variable substitution our docker-compose.yml uses: ${VAR}, ${VAR:-default} and
// ${VAR:?error}. An unset or empty VAR takes the default; with :? it is an error, as in compose itself.
export function interpolate (text: string, env: Record<string, string | undefined>): string {
  return text.replace(/\$\{([A-Za-z_][A-Za-z0-9_]*)(?:(:-|:\?)([^}]*))?\}/g, (_whole, name: string, operator?: string, argument?: string) => {
    const value = env[name]
    if (value !== undefined && value !== '') return value
    if (operator === ':?') throw new Error(`required variable ${name} is missing a value: ${argument}`)
    if (operator === ':-') return argument ?? ''
    return ''
  })
}
