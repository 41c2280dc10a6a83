// The example app's page: buttons for an interactive try, and the scenarios the headless test
// (tests/all/tauri_app.rs, AIRLOCK_SELF_TEST=1) and the benchmark (scripts/tauri-bench,
// AIRLOCK_BENCH) run. Plain `window.__TAURI__` (app.withGlobalTauri): no build step.
const T = window.__TAURI__
const invoke = T.core.invoke
const $ = (id) => document.getElementById(id)
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms))

async function outcome(promise) {
  try {
    return { ok: true, value: await promise }
  } catch (error) {
    return { ok: false, error: error instanceof Error ? String(error) : error }
  }
}

// A request made by hand, past `invoke`: what a script injected into the page could do.
async function handMade(cmd, payload, extraHeaders) {
  const headers = {
    'Content-Type': 'application/json',
    'Tauri-Callback': '1',
    'Tauri-Error': '2',
    ...extraHeaders
  }
  try {
    const response = await fetch(window.__TAURI_INTERNALS__.convertFileSrc(cmd, 'ipc'), {
      method: 'POST',
      body: JSON.stringify(payload),
      headers
    })
    const text = await response.text()
    let body
    try {
      body = JSON.parse(text)
    } catch {
      body = text
    }
    return { ok: true, value: { tauriResponse: response.headers.get('Tauri-Response'), body } }
  } catch (error) {
    return { ok: false, error: String(error) }
  }
}

// Tauri's fallback path, with a key the page can only guess.
function postMessageWithGuessedKey(tag) {
  window.ipc.postMessage(
    JSON.stringify({
      cmd: 'mark',
      callback: 1,
      error: 2,
      payload: { tag },
      options: {},
      __TAURI_INVOKE_KEY__: 'guessed-key-0123456789'
    })
  )
}

// Everything a page script can read: Tauri's globals (deep, with function sources), the
// window's own string properties, every script element and the document.
function haystack() {
  const out = []
  const seen = new Set()
  function walk(value, depth) {
    if (typeof value === 'string') {
      out.push(value)
      return
    }
    if (typeof value === 'function') {
      try {
        out.push(Function.prototype.toString.call(value))
      } catch {}
    }
    if (value === null || (typeof value !== 'object' && typeof value !== 'function')) return
    if (seen.has(value) || depth > 8) return
    seen.add(value)
    let keys = []
    try {
      keys = Reflect.ownKeys(value).filter((k) => typeof k === 'string')
    } catch {}
    for (const key of keys) {
      out.push(key)
      let child
      try {
        child = value[key]
      } catch {
        continue
      }
      if (child !== window) walk(child, depth + 1)
    }
  }
  walk(window.__TAURI_INTERNALS__, 0)
  walk(window.__TAURI__, 0)
  walk(window.ipc, 0)
  for (const key of Object.getOwnPropertyNames(window)) {
    out.push(key)
    try {
      if (typeof window[key] === 'string') out.push(window[key])
    } catch {}
  }
  for (const script of document.scripts) out.push(script.textContent)
  out.push(document.documentElement.outerHTML)
  return out.join('\n')
}

async function mainScenarios(mode) {
  const dir = mode.sandbox
  const r = {}
  r.pass = await outcome(
    invoke('fs_write', { path: `${dir}/note.txt`, contents: 'hello' }).then(() =>
      invoke('fs_read', { path: `${dir}/note.txt` })
    )
  )
  r.readWelcome = await outcome(invoke('fs_read', { path: `${dir}/welcome.txt` }))
  r.reject = await outcome(invoke('fs_read', { path: '/etc/passwd' }))
  r.commandError = await outcome(invoke('fs_read', { path: `${dir}/missing.txt` }))
  r.nullArgs = await outcome(invoke('marks', null))
  r.emit = await outcome(
    T.event.emit('note', { text: 'hi', password: 'hunter2', nested: { token: 't' } })
  )
  r.replace = { ok: false, error: 'no note reached Rust' }
  for (let i = 0; i < 50; i++) {
    r.replace = await outcome(invoke('last_note'))
    if (!r.replace.ok || r.replace.value !== null) break
    await sleep(20)
  }
  r.plugin = await outcome(T.app.getVersion())
  r.listen = await outcome(
    new Promise((resolve, reject) => {
      setTimeout(() => reject('no tick event within 5 s'), 5000)
      T.event
        .listen('tick', (event) => resolve(event.payload))
        .then(() => invoke('tick', { n: 7 }))
        .catch(reject)
    })
  )
  // Bypass attempts.
  postMessageWithGuessedKey('postmessage')
  r.handMadeMalicious = await handMade('fs_read', { path: '/etc/passwd' }, {})
  r.handMadeWithKey = await handMade(
    'mark',
    { tag: 'invoke-key' },
    { 'Tauri-Invoke-Key': 'guessed-key-0123456789' }
  )
  r.handMadeHarmless = await handMade('mark', { tag: 'hand-made' }, {})
  await sleep(500)
  r.marks = await outcome(invoke('marks'))
  r.keySearch = await outcome(invoke('key_search', { haystack: haystack() }))
  return r
}

async function settingsScenarios(mode) {
  const r = {}
  r.readWelcome = await outcome(invoke('fs_read', { path: `${mode.sandbox}/welcome.txt` }))
  r.plugin = await outcome(T.app.getVersion())
  return r
}

// `plan`: {sizes: [bytes], counts: [invokes per batch], rounds: batches per size}.
async function bench(plan) {
  const results = {}
  for (const [i, size] of plan.sizes.entries()) {
    const count = plan.counts[i]
    const data = 'x'.repeat(Math.max(0, size - '{"data":""}'.length))
    for (let n = 0; n < Math.min(20, count); n++) await invoke('bench', { data })
    const perInvokeUs = []
    for (let round = 0; round < (plan.rounds || 1); round++) {
      const start = Date.now()
      for (let n = 0; n < count; n++) await invoke('bench', { data })
      perInvokeUs.push(((Date.now() - start) * 1000) / count)
    }
    results[size] = { count, perInvokeUs }
  }
  return results
}

async function start() {
  let mode
  try {
    mode = await invoke('mode')
  } catch (error) {
    $('result').textContent = `mode failed: ${JSON.stringify(error)}`
    await invoke('report', { results: { startFailed: error } })
    return
  }
  $('where').textContent = `window ${mode.window}; sandbox ${mode.sandbox}; ${
    mode.guarded ? 'guarded by Airlock' : 'NOT guarded (Tauri alone)'
  }`
  if (mode.bench) {
    if (mode.window === 'main') await invoke('report', { results: await bench(mode.bench) })
    return
  }
  if (mode.selfTest) {
    const scenarios = mode.window === 'main' ? mainScenarios : settingsScenarios
    await invoke('report', { results: await scenarios(mode) })
    return
  }
  const show = (o) => {
    $('result').className = o.ok ? '' : 'rejected'
    $('result').textContent = JSON.stringify(o, null, 2)
  }
  const dir = mode.sandbox
  $('read').onclick = async () => show(await outcome(invoke('fs_read', { path: `${dir}/welcome.txt` })))
  $('list').onclick = async () => show(await outcome(invoke('fs_list', { path: dir })))
  $('escape').onclick = async () => show(await outcome(invoke('fs_read', { path: '/etc/passwd' })))
  $('secret').onclick = async () =>
    show(await outcome(T.event.emit('note', { text: 'hi', password: 'hunter2' })))
  $('note').onclick = async () => show(await outcome(invoke('last_note')))
  $('handmade').onclick = async () => show(await handMade('fs_read', { path: '/etc/passwd' }, {}))
  $('postmessage').onclick = async () => {
    postMessageWithGuessedKey('postmessage')
    await sleep(300)
    show(await outcome(invoke('marks')))
  }
}

start()
