// Headless Chromium as this machine allows it, for the browser test (demo.mjs) and the page side
// of the end-to-end benchmark (bench.mjs). Env: AIRLOCK_URL (the page), CHROMIUM (the browser,
// /usr/bin/chromium by default), AIRLOCK_PROFILE (a fresh, empty user-data folder).
import { chromium } from "playwright-core";

/** The page URL and a context in a fresh profile; exits 2 when the env is incomplete. */
export async function launch(script, timeoutMs) {
  const url = process.env.AIRLOCK_URL;
  const profile = process.env.AIRLOCK_PROFILE;
  if (!url || !profile) {
    console.error(`${script}: set AIRLOCK_URL and AIRLOCK_PROFILE`);
    process.exit(2);
  }
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: process.env.CHROMIUM ?? "/usr/bin/chromium",
    headless: true,
    timeout: 60_000,
    // Without the background-networking flags Chromium's connections are refused by this
    // machine's closed network, many at a time.
    args: [
      "--headless",
      "--no-sandbox",
      "--disable-gpu",
      "--disable-quic",
      "--no-first-run",
      "--disable-background-networking",
      "--disable-component-update",
      "--disable-sync",
    ],
  });
  const page = context.pages()[0] ?? (await context.newPage());
  page.setDefaultTimeout(timeoutMs);
  const errors = [];
  page.on("pageerror", (error) => errors.push(String(error)));
  return { url, context, page, errors };
}
