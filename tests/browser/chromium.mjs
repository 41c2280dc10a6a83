// Headless Chromium as this machine allows it, for the browser test (demo.mjs, through
// playwright-core) and the page side of the end-to-end benchmark (bench.mjs, with no debugger
// watching the page: `launchBare`). Env: AIRLOCK_URL (the page), CHROMIUM (the browser,
// /usr/bin/chromium by default), AIRLOCK_PROFILE (a fresh, empty user-data folder).
import { spawn } from "node:child_process";
import { chromium } from "playwright-core";

// Without the background-networking flags Chromium's connections are refused by this machine's
// closed network, many at a time.
const FLAGS = [
  "--headless",
  "--no-sandbox",
  "--disable-gpu",
  "--disable-quic",
  "--no-first-run",
  "--disable-background-networking",
  "--disable-component-update",
  "--disable-sync",
];

function environment(script) {
  const url = process.env.AIRLOCK_URL;
  const profile = process.env.AIRLOCK_PROFILE;
  if (!url || !profile) {
    console.error(`${script}: set AIRLOCK_URL and AIRLOCK_PROFILE`);
    process.exit(2);
  }
  return { url, profile, executable: process.env.CHROMIUM ?? "/usr/bin/chromium" };
}

/** The page URL and a context in a fresh profile; exits 2 when the env is incomplete. */
export async function launch(script, timeoutMs) {
  const { url, profile, executable } = environment(script);
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: executable,
    headless: true,
    timeout: 60_000,
    args: FLAGS,
  });
  const page = context.pages()[0] ?? (await context.newPage());
  page.setDefaultTimeout(timeoutMs);
  const errors = [];
  page.on("pageerror", (error) => errors.push(String(error)));
  return { url, context, page, errors };
}

/**
 * Chromium with one page and no debugger watching it, for measuring what a page sees: Playwright
 * (like Puppeteer and an open DevTools) turns on the DevTools network domain, and then the
 * renderer copies every WebSocket frame's payload into an event for the driver, on the page's
 * own thread: a 1 MB binary echo took 14.6 ms that way and 2.7 ms without (BENCHMARKS.md,
 * 2026-12-04). This speaks the DevTools protocol itself over a pipe and only ever sends
 * `Target.createTarget`, `Target.attachToTarget`, `Page.navigate` and `Runtime.evaluate`: no
 * domain is enabled, so the browser reports nothing while the page runs.
 *
 * Returns `{ url, goto(url), evaluate(fn, arg), close() }`; `evaluate` runs `fn(arg)` in the page
 * (`fn` is sent as source, so it may not close over anything) and resolves with its JSON-able
 * result, or rejects with the page's exception.
 */
export async function launchBare(script, timeoutMs) {
  const { url, profile, executable } = environment(script);
  const browser = spawn(executable, [...FLAGS, `--user-data-dir=${profile}`, "--remote-debugging-pipe", "about:blank"], {
    stdio: ["ignore", "ignore", "pipe", "pipe", "pipe"],
  });
  let stderr = "";
  browser.stderr.on("data", (chunk) => (stderr = (stderr + chunk).slice(-4000)));
  const pending = new Map();
  let nextId = 1;
  let exited = null;
  const failAll = (error) => {
    for (const { reject } of pending.values()) reject(error);
    pending.clear();
  };
  browser.on("exit", (code, signal) => {
    exited = new Error(`Chromium exited (${signal ?? code}) while ${script} ran; its last output: ${stderr}`);
    failAll(exited);
  });
  browser.on("error", (error) => {
    exited = new Error(`cannot start Chromium (${executable}): ${error.message}`);
    failAll(exited);
  });
  // Messages are JSON texts, each ended by a NUL byte, on file descriptors 3 (to the browser)
  // and 4 (from it).
  const toBrowser = browser.stdio[3];
  let buffered = Buffer.alloc(0);
  browser.stdio[4].on("data", (chunk) => {
    buffered = Buffer.concat([buffered, chunk]);
    let end;
    while ((end = buffered.indexOf(0)) >= 0) {
      const message = JSON.parse(buffered.subarray(0, end).toString("utf8"));
      buffered = buffered.subarray(end + 1);
      const waiting = message.id !== undefined && pending.get(message.id);
      if (!waiting) continue;
      pending.delete(message.id);
      if (message.error) waiting.reject(new Error(`${waiting.method}: ${message.error.message}`));
      else waiting.resolve(message.result);
    }
  });
  const send = (method, params = {}, sessionId = undefined) => {
    if (exited) return Promise.reject(exited);
    const id = nextId++;
    toBrowser.write(JSON.stringify({ id, method, params, sessionId }) + "\0");
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        pending.delete(id);
        reject(new Error(`${method}: no answer from Chromium within ${timeoutMs} ms`));
      }, timeoutMs);
      const done = (f) => (value) => (clearTimeout(timer), f(value));
      pending.set(id, { method, resolve: done(resolve), reject: done(reject) });
    });
  };
  const close = async () => {
    if (!exited) {
      await Promise.race([send("Browser.close").catch(() => {}), new Promise((r) => setTimeout(r, 5000))]);
      browser.kill("SIGKILL");
    }
  };
  try {
    const { targetId } = await send("Target.createTarget", { url: "about:blank" });
    const { sessionId } = await send("Target.attachToTarget", { targetId, flatten: true });
    const evaluate = async (fn, arg) => {
      const expression = `(${fn.toString()})(${JSON.stringify(arg ?? null)})`;
      const { result, exceptionDetails } = await send("Runtime.evaluate", { expression, awaitPromise: true, returnByValue: true }, sessionId);
      if (exceptionDetails) {
        throw new Error(exceptionDetails.exception?.description ?? exceptionDetails.text);
      }
      return result.value;
    };
    const goto = async (to) => {
      const { errorText } = await send("Page.navigate", { url: to }, sessionId);
      if (errorText) throw new Error(`cannot open ${to}: ${errorText}`);
      // Navigation answers once the new document is committed; wait for it to have loaded.
      const deadline = Date.now() + timeoutMs;
      for (;;) {
        const state = await evaluate((target) => location.href === target && document.readyState, new URL(to).href).catch(() => false);
        if (state === "complete") return;
        if (Date.now() > deadline) throw new Error(`${to} did not load within ${timeoutMs} ms`);
        await new Promise((r) => setTimeout(r, 20));
      }
    };
    return { url, goto, evaluate, close };
  } catch (error) {
    await close();
    throw error;
  }
}
