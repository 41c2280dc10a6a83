// airlock.js: the page side of Airlock's WebSocket gateway, an ES module with no build step.
//
//   import { invoke, emit, listen, Channel } from "/airlock.js";
//   const text = await invoke("fs_read", { path: "notes.txt" });
//
// One WebSocket is one window, whose labels the server chose (see `Connection`). Every
// message goes through the gateway's hooks: `invoke` and `emit` reject with an `AirlockError`
// carrying the hook's `code` and `reason` when it is refused, and never hang: each has a timeout
// (10 s by default) and all of them reject with code `disconnected` when the socket closes.
// Events and channel data from the core arrive in the order the core sent them. Bytes
// (`Uint8Array`, `ArrayBuffer`, any typed array) travel as binary WebSocket frames, and bytes
// from the core arrive as `Uint8Array`. A JSON request larger than `binaryAbove` (16 KiB by
// default) travels as a binary frame too, its JSON written as UTF-8 into a buffer the
// connection reuses: Chromium moves a binary message of a megabyte several times faster than a
// text one (BENCHMARKS.md, 2026-12-04). A JSON request larger than `uploadAbove` (never, by
// default) sends its body by `fetch` POST of a Blob beside the WebSocket instead; its frame on
// the WebSocket keeps its place in the window's order.

/** A refusal: `code` is machine-readable (`path-escape`, `too-large`, `timeout`…). */
export class AirlockError extends Error {
  constructor(code, reason) {
    super(`${code}: ${reason}`);
    this.name = "AirlockError";
    this.code = code;
    this.reason = reason;
  }
}

const channels = new Map();
let nextChannelId = 1;

/** A stream from the core: pass it in a command's args; the core sends data to it in order. */
export class Channel {
  constructor(onmessage) {
    this.id = nextChannelId++;
    this.onmessage = onmessage ?? (() => {});
    channels.set(this.id, this);
  }
  /** Stops receiving; later data for this channel is dropped with a console warning. */
  close() {
    channels.delete(this.id);
  }
  toJSON() {
    return { __airlock_channel: this.id };
  }
}

const encoder = new TextEncoder();

function isBytes(value) {
  return value instanceof ArrayBuffer || ArrayBuffer.isView(value);
}

function asBytes(value) {
  return value instanceof ArrayBuffer
    ? new Uint8Array(value)
    : new Uint8Array(value.buffer, value.byteOffset, value.byteLength);
}

/** One window's connection to the gateway. */
export class Connection {
  /**
   * Connects with a window ticket: `ticket` when given (one the app issued), else this tab's
   * ticket from an earlier load of this page (kept in sessionStorage, so a reload comes back as
   * the same window), else the one the server put in the page's
   * `<meta name="airlock-ticket">`. The server chooses the window's labels; they are in
   * `label` and `webview` once `ready` resolves to true. A JSON request whose JSON is over
   * `binaryAbove` characters goes as a binary frame (`Infinity`: always text), and one whose
   * frame is over `uploadAbove` characters (`Infinity`, the default: never) by POST to
   * `/airlock/upload`.
   */
  constructor({ url, ticket, timeout = 10000, binaryAbove = 16 * 1024, uploadAbove = Infinity, ...rest } = {}) {
    for (const option of ["window", "webview"]) {
      if (option in rest) {
        throw new Error(
          `airlock: the "${option}" option is gone: window labels are issued by the server with the page's ticket, not chosen by the page`,
        );
      }
    }
    this.base = url ?? `${location.protocol === "https:" ? "wss" : "ws"}://${location.host}/airlock`;
    this.label = null;
    this.webview = null;
    this.uploadUrl = `${this.base.replace(/^ws(s?):/, "http$1:")}/upload`;
    this.binaryAbove = binaryAbove;
    this.uploadAbove = uploadAbove;
    this.scratch = new Uint8Array(0);
    this.maxMessageBytes = Infinity;
    this.ticket = null;
    this.timeout = timeout;
    this.nextId = 1;
    this.pending = new Map();
    this.listeners = new Map();
    this.verdictHandlers = new Set();
    this.closeHandlers = new Set();
    this.closed = null;
    this.socket = null;
    this.ready = this.open(ticket);
  }

  async open(given) {
    const key = `airlock-ticket:${location.pathname}`;
    const meta = globalThis.document?.querySelector('meta[name="airlock-ticket"]')?.content;
    let stored = null;
    try {
      stored = sessionStorage.getItem(key);
    } catch {
      // no sessionStorage (a sandboxed frame): the page's own ticket only
    }
    const tickets = given ? [given] : [...new Set([stored, meta].filter(Boolean))];
    let refusal = { code: 1008, reason: "no window ticket: serve the page through the gateway, or pass connect({ ticket })" };
    for (const ticket of tickets) {
      // A reloaded page's ticket may be held by its old connection for a moment.
      const tries = ticket === stored && ticket !== meta ? 5 : 1;
      for (let attempt = 1; attempt <= tries; attempt++) {
        const result = await this.attempt(ticket);
        if (result === true) {
          this.ticket = ticket;
          if (!given) {
            try {
              sessionStorage.setItem(key, ticket);
            } catch {
              // as above
            }
          }
          return true;
        }
        refusal = result;
        if (attempt < tries) await new Promise((resolve) => setTimeout(resolve, 100 * attempt));
      }
    }
    this.shut(refusal.code, refusal.reason || "the gateway refused the window ticket");
    return false;
  }

  /** One try with `ticket`: true once the server has said which window this is, else the close it got. */
  attempt(ticket) {
    return new Promise((resolve) => {
      let settled = false;
      const settle = (value) => {
        if (!settled) resolve(value);
        settled = true;
      };
      const socket = new WebSocket(`${this.base}?ticket=${encodeURIComponent(ticket)}`);
      socket.binaryType = "arraybuffer";
      socket.addEventListener("open", () => {
        this.socket = socket;
        this.welcomed = () => settle(true);
        socket.addEventListener("message", (event) => this.receive(event.data));
      });
      socket.addEventListener("close", (event) => {
        if (settled) this.shut(event.code, event.reason);
        else settle({ code: event.code, reason: event.reason });
      });
    });
  }

  /** Calls command `cmd` with `args` (an object, or bytes); resolves with its result. */
  invoke(cmd, args = {}, options = {}) {
    return this.request("command", cmd, args, options);
  }

  /** Emits event `event` to the core's listeners; resolves when delivered. */
  emit(event, payload = null, options = {}) {
    return this.request("event", event, payload, options);
  }

  /** Sends `data` on the core's channel `name` (frontend → core); resolves when delivered. */
  send(name, data, options = {}) {
    return this.request("channel", name, data, options);
  }

  /** Calls `handler(payload, event)` for each core event `event`; returns an unlisten function. */
  listen(event, handler) {
    if (!this.listeners.has(event)) this.listeners.set(event, new Set());
    this.listeners.get(event).add(handler);
    return () => this.listeners.get(event)?.delete(handler);
  }

  /** Calls `handler(verdict)` for every verdict the gateway reports; returns an unlisten function. */
  onVerdict(handler) {
    this.verdictHandlers.add(handler);
    return () => this.verdictHandlers.delete(handler);
  }

  /** Calls `handler({code, reason})` when the connection closes. */
  onClose(handler) {
    this.closeHandlers.add(handler);
    if (this.closed) handler(this.closed);
    return () => this.closeHandlers.delete(handler);
  }

  close() {
    this.socket?.close(1000, "closed by the page");
  }

  async request(kind, name, payload, { timeout = this.timeout, headers } = {}) {
    if (!(await this.ready) || this.closed) {
      const { code, reason } = this.closed ?? { code: 1006, reason: "" };
      throw new AirlockError("disconnected", `the connection is closed (${code}${reason ? `: ${reason}` : ""})`);
    }
    const id = this.nextId++;
    const head = { id, kind, name };
    if (headers) head.headers = Object.entries(headers instanceof Headers ? Object.fromEntries(headers) : headers);
    // A body past the gateway's limit is refused here, before it is framed: sent, its frame could
    // be large enough for the gateway to close the connection. JSON is measured first in
    // characters (each at least one UTF-8 byte), then in bytes once written; nearer the limit
    // the gateway measures exactly.
    const tooLarge = (size) => {
      if (size > this.maxMessageBytes) {
        throw new AirlockError("too-large", `the ${kind} "${name}" is ${size} bytes, over the gateway's limit of ${this.maxMessageBytes} bytes`);
      }
    };
    let frame;
    if (isBytes(payload)) {
      const bytes = asBytes(payload);
      tooLarge(bytes.length);
      frame = this.binaryFrame(head, bytes);
    } else {
      const json = payload === undefined ? undefined : JSON.stringify(payload);
      tooLarge(json?.length ?? 0);
      if (json !== undefined && json.length > this.binaryAbove && json.length <= this.uploadAbove) {
        frame = this.binaryFrame({ ...head, json: true }, json);
        tooLarge(frame.bodyLength);
      } else {
        frame = json === undefined ? JSON.stringify(head) : `${JSON.stringify(head).slice(0, -1)},"payload":${json}}`;
      }
    }
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pending.delete(id);
        reject(new AirlockError("timeout", `no reply to ${kind} "${name}" within ${timeout} ms`));
      }, timeout);
      this.pending.set(id, { resolve, reject, timer });
      try {
        if (typeof frame === "string" && frame.length > this.uploadAbove) {
          this.socket.send(JSON.stringify({ id, kind, name, upload: true }));
          this.upload(id, frame);
        } else {
          this.socket.send(frame);
        }
      } catch (error) {
        this.settle(id, { ok: false, code: "disconnected", reason: String(error) });
      }
    });
  }

  /**
   * A binary frame: the head's length (big-endian u32), the head's JSON, then `body` (bytes, or a
   * string written as UTF-8), in this connection's scratch buffer, which the next frame reuses
   * (`WebSocket.send` copies what it is given): a new megabyte buffer each time would cost the
   * page more than the send.
   */
  binaryFrame(head, body) {
    const text = encoder.encode(JSON.stringify(head));
    const start = 4 + text.length;
    const fits = (size) => {
      if (this.scratch.length < size) this.scratch = new Uint8Array(Math.max(size, 2 * this.scratch.length));
    };
    let end;
    if (typeof body === "string") {
      // One byte a character fits ASCII; three always do.
      fits(start + body.length);
      let written = encoder.encodeInto(body, this.scratch.subarray(start));
      if (written.read < body.length) {
        fits(start + 3 * body.length);
        written = encoder.encodeInto(body, this.scratch.subarray(start));
      }
      end = start + written.written;
    } else {
      fits(start + body.length);
      this.scratch.set(body, start);
      end = start + body.length;
    }
    new DataView(this.scratch.buffer).setUint32(0, text.length);
    this.scratch.set(text, 4);
    const frame = this.scratch.subarray(0, end);
    frame.bodyLength = end - start;
    return frame;
  }

  /** POSTs request `id`'s whole frame; its reply comes on the WebSocket, a refusal here too. */
  async upload(id, frame) {
    const url = `${this.uploadUrl}?ticket=${encodeURIComponent(this.ticket)}&id=${id}`;
    let response;
    try {
      response = await fetch(url, { method: "POST", body: new Blob([frame]), cache: "no-store", credentials: "omit" });
    } catch (error) {
      this.settle(id, { ok: false, code: "upload-failed", reason: `the body could not be sent to ${this.uploadUrl}: ${error}` });
      return;
    }
    if (!response.ok) {
      const reason = await response.text().catch(() => "");
      const code = response.status === 413 ? "too-large" : "upload-failed";
      this.settle(id, { ok: false, code, reason: reason || `${this.uploadUrl} answered ${response.status}` });
    }
  }

  settle(id, reply, bytes) {
    const pending = this.pending.get(id);
    if (!pending) return; // timed out already
    this.pending.delete(id);
    clearTimeout(pending.timer);
    if (reply.ok) pending.resolve(bytes ?? reply.payload);
    else pending.reject(new AirlockError(reply.code, reply.reason));
  }

  receive(data) {
    let frame;
    let bytes;
    try {
      if (typeof data === "string") {
        frame = JSON.parse(data);
      } else {
        const view = new DataView(data);
        const length = view.getUint32(0);
        frame = JSON.parse(new TextDecoder().decode(new Uint8Array(data, 4, length)));
        bytes = new Uint8Array(data, 4 + length);
      }
    } catch (error) {
      console.error("airlock: unreadable frame from the gateway", error);
      return;
    }
    const payload = bytes ?? frame.payload;
    const call = (handler, ...args) => {
      try {
        handler(...args);
      } catch (error) {
        console.error("airlock: a handler threw", error);
      }
    };
    // A reply (or error) carries its verdict when the server reports them: one frame an answer.
    if (frame.verdict && this.verdictHandlers.size) {
      const verdict = { type: "verdict", ...frame.verdict };
      for (const handler of this.verdictHandlers) call(handler, verdict);
    }
    switch (frame.type) {
      case "reply":
        this.settle(frame.id, frame, bytes);
        break;
      case "event":
        for (const handler of this.listeners.get(frame.name) ?? []) call(handler, payload, frame);
        break;
      case "channel": {
        const channel = channels.get(frame.channel);
        if (channel) call(channel.onmessage, payload);
        else console.warn(`airlock: data for closed channel ${frame.channel}`);
        break;
      }
      case "window":
        this.label = frame.window;
        this.webview = frame.webview;
        this.maxMessageBytes = frame.max_message_bytes ?? Infinity;
        this.welcomed?.();
        break;
      case "error":
        console.error(`airlock: gateway refused a frame: ${frame.code}: ${frame.reason}`);
        if (!frame.verdict) {
          for (const handler of this.verdictHandlers) call(handler, { ...frame, verdict: "reject" });
        }
        break;
      default:
        console.warn("airlock: unknown frame type", frame.type);
    }
  }

  shut(code, reason) {
    this.closed = { code, reason };
    for (const [id] of this.pending) {
      this.settle(id, {
        ok: false,
        code: "disconnected",
        reason: `the connection closed (${code}${reason ? `: ${reason}` : ""}) before a reply`,
      });
    }
    for (const handler of this.closeHandlers) handler(this.closed);
  }
}

let current = null;

/** Opens the page's connection (once); later calls return the same one. */
export function connect(options) {
  current ??= new Connection(options);
  return current;
}

export const invoke = (cmd, args, options) => connect().invoke(cmd, args, options);
export const emit = (event, payload, options) => connect().emit(event, payload, options);
export const send = (name, data, options) => connect().send(name, data, options);
export const listen = (event, handler) => connect().listen(event, handler);
export const onVerdict = (handler) => connect().onVerdict(handler);
