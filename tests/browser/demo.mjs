// Drives the Airlock demo page in headless Chromium through a pass, a replace and a reject, then
// large requests (binary frames on the WebSocket, and by upload).
// Run by tests/all/browser.rs with AIRLOCK_URL (the page), CHROMIUM (the browser) and
// AIRLOCK_PROFILE (a fresh, empty user-data folder). Prints one line per step; exits 1 on failure.
import { launch } from "./chromium.mjs";

const { url, context, page, errors } = await launch("demo.mjs", 30_000);

function check(condition, what) {
  if (!condition) throw new Error(`check failed: ${what}`);
}

async function verdictRow(name, verdict) {
  const row = page.locator(`#verdicts tr[data-name="${name}"][data-verdict="${verdict}"]`).first();
  await row.waitFor();
  return (await row.locator("td").allTextContents()).map((t) => t.trim());
}

try {
  await page.goto(url);
  await page.locator("#status", { hasText: "connected" }).waitFor();
  console.log("connected");

  // pass: a read inside the demo folder
  await page.fill("#read-path", "notes.txt");
  await page.click("#read");
  await page.locator("#result", { hasText: "Hello from the demo folder" }).waitFor();
  const pass = await verdictRow("fs_read", "pass");
  check(/^[0-9a-f]{12}…$/.test(pass[6]), `pass row names the hook digest: ${pass}`);
  check(Number(pass[7]) > 0, `pass row has a cost: ${pass}`);
  console.log(`pass: ${pass.join(" | ")}`);

  // channel: the same file streamed as bytes, in order
  await page.click("#stream");
  await page.locator("#result", { hasText: "chunks in order" }).waitFor();
  const streamed = await page.textContent("#result");
  check(streamed.includes("Uint8Array(64)") && streamed.includes("Hello from the demo folder"), streamed);
  console.log(`channel: ${streamed.split("\n")[0]}`);

  // replace: the redact hook removes the password from the event
  await page.click("#profile");
  await page.locator("#core-received", { hasText: "ada" }).waitFor();
  const received = await page.textContent("#core-received");
  check(!received.includes("hunter2") && !received.includes("eyJhbGciOi"), `secrets removed: ${received}`);
  const replace = await verdictRow("profile", "replace");
  console.log(`replace: ${replace.join(" | ")}; core received ${received.replace(/\s+/g, " ")}`);

  // reject: a path walking out of the folder settles the invoke with the hook's code
  await page.click("#attack-traversal");
  await page.locator('#result[data-code="path-escape"]').waitFor();
  const rejected = await page.textContent("#result");
  check(rejected.startsWith("rejected: path-escape"), rejected);
  const reject = await verdictRow("fs_read", "reject");
  check(reject[4] === "path-escape", `reject row has the code: ${reject}`);
  console.log(`reject: ${reject.join(" | ")}`);

  // a large event goes as a binary frame on the WebSocket, in its place in the order (or by
  // upload beside it, when the connection says so); frames built one after another in the same
  // scratch buffer arrive intact; one over the size limit is refused with too-large
  const large = await page.evaluate(async () => {
    const airlock = await import("/airlock.js");
    const order = [];
    const big = airlock.emit("large", { data: "x".repeat(1_000_000) }).then(() => order.push("large"));
    const small = airlock.emit("small", {}).then(() => order.push("small"));
    await Promise.all([big, small]);
    const sizes = await Promise.all([
      airlock.invoke("args_size", { data: "a".repeat(300_000) }),
      airlock.invoke("args_size", { data: "b".repeat(200_000) }),
      airlock.invoke("args_size", new Uint8Array(50_000)).catch((error) => error.code),
    ]);
    // An upload's timing entry comes when its (empty) answer has been read.
    const uploadEntries = () => performance.getEntriesByType("resource").filter((e) => e.name.includes("/airlock/upload")).length;
    const uploadsSoFar = uploadEntries();
    const html = await (await fetch(location.pathname, { cache: "no-store" })).text();
    const ticket = html.match(/name="airlock-ticket" content="([0-9a-f]+)"/)[1];
    const uploading = new airlock.Connection({ ticket, uploadAbove: 500_000 });
    await uploading.ready;
    // Its scratch buffer is empty: two-byte characters outgrow a guess of one byte each.
    const accented = await uploading.invoke("args_size", { data: "é".repeat(100_000) });
    const uploadOrder = [];
    await Promise.all([
      uploading.emit("large", { data: "y".repeat(1_000_000) }).then(() => uploadOrder.push("large")),
      uploading.emit("small", {}).then(() => uploadOrder.push("small")),
    ]);
    uploading.close();
    for (let i = 0; i < 100 && uploadEntries() === 0; i++) await new Promise((r) => setTimeout(r, 20));
    const uploads = uploadEntries();
    let refused = null;
    try {
      await airlock.emit("huge", { data: "x".repeat(20_000_000) });
    } catch (error) {
      refused = error.code;
    }
    // Refused before it was sent: the window goes on.
    const after = await airlock.invoke("args_size", { data: "ok" }).catch((error) => error.code);
    return { after, order: order.join(","), sizes, accented, uploadsSoFar, uploadOrder: uploadOrder.join(","), uploads, refused };
  });
  check(large.order === "large,small", `the large event is delivered before the small one sent after it: ${large.order}`);
  check(
    JSON.stringify(large.sizes) === JSON.stringify([{ bytes: 300_011 }, { bytes: 200_011 }, "invalid-args"]),
    `large frames built one after another arrive intact: ${JSON.stringify(large.sizes)}`,
  );
  check(large.accented?.bytes === 200_011, `non-ASCII JSON arrives as UTF-8: ${JSON.stringify(large)}`);
  check(large.uploadsSoFar === 0, `large requests go on the WebSocket by default: ${JSON.stringify(large)}`);
  check(large.uploadOrder === "large,small" && large.uploads === 1, `with uploadAbove, the large event went by upload, in order: ${JSON.stringify(large)}`);
  check(large.refused === "too-large", `an event over the limit is refused: ${JSON.stringify(large)}`);
  check(large.after?.bytes === 13, `the window goes on after a refusal for size: ${JSON.stringify(large)}`);
  console.log(`large: ${JSON.stringify(large)}`);

  check(errors.length === 0, `no page errors: ${errors.join("; ")}`);
  console.log("browser test: pass, replace and reject seen in the page");
} catch (error) {
  console.error(String(error));
  console.error("page text:\n" + (await page.innerText("body").catch(() => "(unavailable)")));
  process.exitCode = 1;
} finally {
  await context.close();
}
