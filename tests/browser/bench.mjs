// The page side of the end-to-end benchmark (`scripts/e2e-bench`, benches/src/bin/e2e.rs): a
// blank page in headless Chromium calling through `airlock serve` with `airlock.js`, timed inside
// the page with `performance.now()`, with no debugger watching the page (`launchBare`: under
// Playwright's instrumentation every WebSocket frame is copied into a DevTools event). The server
// serves the blank page cross-origin isolated (`airlock serve --cross-origin-isolated`), so the
// page's clock resolves 5 µs instead of 100 µs.
//
// Env: AIRLOCK_URL (the blank page, `http://127.0.0.1:PORT/`), CHROMIUM, AIRLOCK_PROFILE (a fresh,
// empty user-data folder), AIRLOCK_BENCH (JSON: {"cases": [{"kind","size","rounds","warmup",
// "frames","raw"}] (frames: "text" sends JSON in text frames, `binaryAbove: Infinity`; "upload"
// by upload, `uploadAbove: 0`; raw: a bare WebSocket with a ticket instead of airlock.js, for
// text kinds),
// "pipelined": [{"connections","seconds","window","size"}], "floor": {"url", "cases": [{"size",
// "rounds","warmup"}]}}). Prints one JSON object a case on standard output: {"case":…,
// "samples_us":[…]}, {"pipelined":…, "messages":…, "seconds":…} or {"floor":{"transport","size"},
// "samples_us":[…]}.
//
// The floor is what the same browser pays with no Airlock at all: the page at `floor.url` (a bare
// server, benches/src/floor.rs) sends the emit's JSON text, the same bytes as a binary frame, and
// the same bytes as a `fetch` POST of a Blob, each waiting for a small answer.
import { launchBare } from "./chromium.mjs";

const plan = JSON.parse(process.env.AIRLOCK_BENCH ?? "{}");
const page = await launchBare("bench.mjs", 600_000);
const { url } = page;

try {
  if (plan.cases?.length || plan.pipelined?.length) {
    await page.goto(url);
    if (!(await page.evaluate(() => crossOriginIsolated))) {
      console.error("bench.mjs: the page is not cross-origin isolated: performance.now() is 100 µs coarse");
    }
    await page.evaluate(async () => {
      const airlock = await import("/airlock.js");
      // One request of `kind` with a body of about `size` bytes: JSON `{"data":"xxx…"}` or bytes.
      const body = (kind, size) =>
        kind === "bytes" ? new Uint8Array(size).fill(120) : { data: "x".repeat(Math.max(0, size - 11)) };
      // Each connection is a window of its own: fetch the page again for a fresh window ticket.
      const freshTicket = async () => {
        const html = await (await fetch(location.pathname, { cache: "no-store" })).text();
        const ticket = html.match(/name="airlock-ticket" content="([0-9a-f]+)"/)?.[1];
        if (!ticket) throw new Error("the served page carries no window ticket");
        return ticket;
      };
      const connectFresh = async (options = {}) => {
        const ticket = await freshTicket();
        const connection = new airlock.Connection({ ticket, timeout: 60_000, ...options });
        if (!(await connection.ready)) throw new Error(`a window did not connect: ${JSON.stringify(connection.closed)}`);
        return connection;
      };
      const call = (connection, kind, payload) =>
        kind === "invoke" ? connection.invoke("args_size", payload) : connection.emit("bench", payload);
      // The same requests on a bare WebSocket with a fresh ticket, without airlock.js: the
      // client library's own share.
      const connectRaw = async () => {
        const ticket = await freshTicket();
        const socket = new WebSocket(`ws://${location.host}/airlock?ticket=${ticket}`);
        let answered = null;
        await new Promise((resolve, reject) => {
          socket.onclose = (event) => reject(new Error(`a raw window closed: ${event.code} ${event.reason}`));
          socket.onmessage = (event) => {
            const frame = JSON.parse(event.data);
            if (frame.type === "window") resolve();
            else if (frame.type === "reply") answered?.(frame);
          };
        });
        return {
          call(kind, payload) {
            const head = kind === "invoke" ? { id: 1, kind: "command", name: "args_size" } : { id: 1, kind: "event", name: "bench" };
            return new Promise((resolve, reject) => {
              answered = (frame) => (frame.ok ? resolve() : reject(new Error(`${frame.code}: ${frame.reason}`)));
              socket.send(JSON.stringify({ ...head, payload }));
            });
          },
          close: () => socket.close(),
        };
      };
      window.bench = {
        async sequential({ kind, size, rounds, warmup, frames, raw }) {
          const options = { text: { binaryAbove: Infinity }, upload: { uploadAbove: 0 } }[frames] ?? {};
          const connection = raw ? await connectRaw() : await connectFresh(options);
          const once = raw ? (payload) => connection.call(kind, payload) : (payload) => call(connection, kind, payload);
          const payload = body(kind, size);
          const samples = [];
          for (let i = 0; i < warmup + rounds; i++) {
            const start = performance.now();
            await once(payload);
            const took = performance.now() - start;
            if (i >= warmup) samples.push(Math.round(took * 1000));
          }
          connection.close();
          return samples;
        },
        async pipelined({ connections, seconds, window: depth, size, kind }) {
          const open = [];
          for (let c = 0; c < connections; c++) open.push(await connectFresh());
          const payload = body(kind, size);
          // Warm up every connection, then keep `depth` requests in flight on each.
          await Promise.all(open.map((c) => call(c, kind, payload)));
          let messages = 0;
          const start = performance.now();
          const end = start + seconds * 1000;
          const lane = async (connection) => {
            while (performance.now() < end) {
              await call(connection, kind, payload);
              messages++;
            }
          };
          await Promise.all(open.flatMap((c) => Array.from({ length: depth }, () => lane(c))));
          const took = (performance.now() - start) / 1000;
          for (const c of open) c.close();
          return { messages, seconds: took };
        },
      };
    });
    for (const c of plan.cases ?? []) {
      const samples = await page.evaluate((c) => window.bench.sequential(c), c);
      console.log(JSON.stringify({ case: c, samples_us: samples }));
    }
    for (const p of plan.pipelined ?? []) {
      const result = await page.evaluate((p) => window.bench.pipelined(p), p);
      console.log(JSON.stringify({ pipelined: p, ...result }));
    }
  }
  if (plan.floor) {
    await page.goto(plan.floor.url);
    for (const c of plan.floor.cases) {
      const results = await page.evaluate(async ({ size, rounds, warmup }) => {
        const socket = new WebSocket(`ws://${location.host}/ws`);
        socket.binaryType = "arraybuffer";
        await new Promise((resolve, reject) => {
          socket.onopen = resolve;
          socket.onerror = () => reject(new Error("the floor's WebSocket did not open"));
        });
        let answer = null;
        socket.onmessage = () => answer?.();
        const text = JSON.stringify({ id: 1, kind: "event", name: "bench", payload: { data: "x".repeat(Math.max(0, size - 11)) } });
        const bytes = new TextEncoder().encode(text);
        const ways = {
          "websocket text": () => new Promise((resolve) => ((answer = resolve), socket.send(text))),
          "websocket binary": () => new Promise((resolve) => ((answer = resolve), socket.send(bytes))),
          "websocket binary, encoded each time": () =>
            new Promise((resolve) => ((answer = resolve), socket.send(new TextEncoder().encode(text)))),
          "fetch POST blob": async () => (await fetch("/post", { method: "POST", body: new Blob([text]) })).json(),
        };
        const out = {};
        for (const [transport, once] of Object.entries(ways)) {
          const samples = [];
          for (let i = 0; i < warmup + rounds; i++) {
            const start = performance.now();
            await once();
            const took = performance.now() - start;
            if (i >= warmup) samples.push(Math.round(took * 1000));
          }
          out[transport] = samples;
        }
        socket.close();
        return out;
      }, c);
      for (const [transport, samples] of Object.entries(results)) {
        console.log(JSON.stringify({ floor: { transport, size: c.size }, samples_us: samples }));
      }
    }
  }
} catch (error) {
  console.error(String(error));
  process.exitCode = 1;
} finally {
  await page.close();
}
