// The frontend under test: calls the gateway with fetch() and a bearer token, as a web app on another origin
// does, and records what JavaScript could read of each answer — the browser hides every status, body and
// header that CORS does not allow, and a refused answer is only `TypeError: Failed to fetch`.
// The test drives it through window.gatewayPage; each call is also a row of the results table (the
// screenshot taken when a check fails).
/* global document, window, fetch, URL */

const rows = document.querySelector('#results tbody')
document.querySelector('#origin').textContent = window.location.origin

function render (r) {
  const tr = document.createElement('tr')
  tr.className = !r.ok ? 'refused' : r.status >= 400 ? 'error' : 'ok'
  const cells = [
    String(rows.children.length + 1),
    r.label,
    r.ok ? String(r.status) : r.error,
    r.json?.error?.code ?? '',
    r.ok ? Object.entries(r.headers).map(([k, v]) => `${k}: ${v}`).join('\n') : ''
  ]
  for (const [i, text] of cells.entries()) {
    const td = document.createElement('td')
    td.textContent = text
    if (i === 2) td.className = 'status'
    if (i === 4) { td.className = 'headers'; td.style.whiteSpace = 'pre-wrap' }
    tr.append(td)
  }
  rows.append(tr)
}

/**
 * One fetch(). `bodyBytes` sends a JSON-typed body of that many bytes (built here, not shipped over the
 * test's wire). Resolves with what JavaScript could read: status, the final URL, every readable header
 * (lower-case names), the body as JSON (or text) — or, when the browser refused the answer, the error.
 */
async function call (label, { url, method = 'GET', token, json, bodyBytes, headers = {}, credentials } = {}) {
  const init = { method, headers: { ...headers } }
  if (credentials !== undefined) init.credentials = credentials
  if (token !== undefined) init.headers.authorization = `Bearer ${token}`
  if (json !== undefined || bodyBytes !== undefined) {
    init.body = json !== undefined ? JSON.stringify(json) : 'x'.repeat(bodyBytes)
    init.headers['content-type'] ??= 'application/json'
  }
  let result
  try {
    const res = await fetch(url, init)
    const text = await res.text()
    let parsed = null
    try { parsed = text === '' ? null : JSON.parse(text) } catch { parsed = null }
    result = { label, ok: true, status: res.status, url: res.url, headers: Object.fromEntries(res.headers), json: parsed, text }
  } catch (err) {
    result = { label, ok: false, error: `${err.name}: ${err.message}` }
  }
  render(result)
  return result
}

/** The `rel="next"` target of a Link header, resolved against the answer's URL, or null. */
function nextLink (link, base) {
  const m = /<([^>]*)>\s*;\s*rel="?next"?/.exec(link ?? '')
  return m === null ? null : new URL(m[1], base).href
}

/** Creates a task and follows its Location: what a frontend does after a POST. */
async function createAndFollow (label, { url, token, json, credentials }) {
  const created = await call(`${label}: POST`, { url, method: 'POST', token, json, credentials })
  const location = created.ok ? created.headers.location : undefined
  if (location === undefined) return { created, followed: null, locationUrl: null }
  const locationUrl = new URL(location, created.url).href
  const followed = await call(`${label}: GET Location`, { url: locationUrl, token, credentials })
  return { created, followed, locationUrl }
}

/** Reads every page of a list by following Link rel="next" until there is none (at most `maxPages`). */
async function readAllPages (label, { url, token, maxPages = 20 }) {
  const pages = []
  let next = url
  while (next !== null && pages.length < maxPages) {
    const page = await call(`${label}: page ${pages.length + 1}`, { url: next, token })
    pages.push(page)
    next = page.ok && page.status === 200 ? nextLink(page.headers.link, page.url) : null
  }
  return pages
}

/**
 * A call that refreshes an expired token once, the way a Better Auth client does: on a 401 whose
 * WWW-Authenticate says `error="invalid_token"` and whose body says `token_expired`, get a new token
 * (window.freshToken, provided by the test) and retry.
 */
async function callWithRefresh (label, options) {
  const first = await call(`${label}: with the stale token`, options)
  const challenge = first.ok ? first.headers['www-authenticate'] ?? '' : ''
  const expired = first.ok && first.status === 401 && /error="invalid_token"/.test(challenge) && first.json?.error?.code === 'token_expired'
  if (!expired) return { first, retried: null }
  const token = await window.freshToken()
  const retried = await call(`${label}: after refreshing the token`, { ...options, token })
  return { first, retried }
}

window.gatewayPage = { call, createAndFollow, readAllPages, callWithRefresh, nextLink }
window.gatewayPageReady = true
