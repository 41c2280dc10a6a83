// Airlock's invoke script for Tauri v2 (installed with `Builder::invoke_system`), in place of
// Tauri's `ipc-protocol.js`. It sends every invoke to the `ipc` custom protocol with Tauri's
// headers — but never Tauri's invoke key, which this page never learns: without it, Tauri's
// `window.ipc.postMessage` path drops whatever a page sends there. There is no postMessage
// fallback: a failed request rejects the invoke's promise.
;(function () {
  const processIpcMessage = __AIRLOCK_PROCESS_IPC_MESSAGE_FN__
  const osName = __AIRLOCK_OS_NAME__

  function fail(error, code, reason) {
    window.__TAURI_INTERNALS__.runCallback(error, { code, reason, hook: null })
  }

  function sendIpcMessage(message) {
    const { cmd, callback, error, payload, options } = message
    // Android's webview cannot read a custom protocol request's body, so Tauri always uses
    // postMessage there: Airlock cannot guard it and fails closed.
    if (osName === 'android') {
      fail(error, 'airlock-unsupported-platform', 'Airlock cannot carry IPC on Android')
      return
    }
    const { contentType, data } = processIpcMessage(payload)
    const headers = new Headers((options && options.headers) || {})
    headers.set('Content-Type', contentType)
    headers.set('Tauri-Callback', callback)
    headers.set('Tauri-Error', error)
    fetch(window.__TAURI_INTERNALS__.convertFileSrc(cmd, 'ipc'), {
      method: 'POST',
      body: data,
      headers
    })
      .then((response) => {
        const callbackId =
          response.headers.get('Tauri-Response') === 'ok' ? callback : error
        switch ((response.headers.get('content-type') || '').split(',')[0]) {
          case 'application/json':
            return response.json().then((r) => [callbackId, r])
          case 'text/plain':
            return response.text().then((r) => [callbackId, r])
          default:
            return response.arrayBuffer().then((r) => [callbackId, r])
        }
      })
      .then(
        ([callbackId, data]) => {
          window.__TAURI_INTERNALS__.runCallback(callbackId, data)
        },
        (e) => fail(error, 'airlock-transport', String(e))
      )
  }

  Object.defineProperty(window.__TAURI_INTERNALS__, 'postMessage', {
    value: sendIpcMessage
  })
})()
