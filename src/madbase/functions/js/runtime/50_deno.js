// MadBase JS runtime, part 6: the Deno namespace (serve, env, ...), EdgeRuntime, and the host protocol:
// frames on stdout ("K" booted, "R" response, "X" failure, "F" outbound fetch, "S" idle state), the request
// head as one JSON line on stdin followed by the body bytes. docs/functions-js.md describes the protocol.
"use strict";
(() => {
  const mb = __madbase, define = mb.define, std = globalThis.std;
  let handler = null, serveOptions = {};
  const HIDDEN = new Set();  // names the host sets for itself, never shown by Deno.env

  // everything a request writes to stdout is capped (it is kept in host memory until the host reads it)
  const OUTPUT_CAP = 256 * 1024 * 1024;
  let written = 0;
  mb.frame = (kind, meta, body) => {
    const m = mb.utf8Encode(JSON.stringify(meta));
    const b = body || new Uint8Array(0);
    written += m.length + b.length + 32;
    if (written > OUTPUT_CAP) throw new RangeError("output limit of a function invocation exceeded (256 MiB)");
    const head = mb.utf8Encode(`${kind} ${m.length} ${b.length}\n`);
    const all = mb.concatBytes([head, m, b]);
    std.out.write(all.buffer, all.byteOffset, all.length);
    std.out.flush();
  };

  class NotSupported extends Error { constructor(what) { super(`${what} is not available in MadBase functions (no filesystem, processes or raw sockets)`); this.name = "PermissionDenied"; } }
  const errors = {};
  for (const n of ["NotFound", "PermissionDenied", "ConnectionRefused", "ConnectionReset", "ConnectionAborted", "NotConnected", "AddrInUse", "AddrNotAvailable", "BrokenPipe", "AlreadyExists", "InvalidData", "TimedOut", "Interrupted", "WriteZero", "UnexpectedEof", "BadResource", "Http", "Busy", "NotSupported"]) {
    errors[n] = class extends Error { constructor(m) { super(m); this.name = n; } };
  }
  const denied = (what) => () => { throw new errors.PermissionDenied(new NotSupported(what).message); };
  const deniedAsync = (what) => async () => { throw new errors.PermissionDenied(new NotSupported(what).message); };

  const env = {
    get(name) { name = String(name); if (HIDDEN.has(name)) return undefined; const v = std.getenv(name); return v === undefined || v === null ? undefined : v; },
    set(name, value) { std.setenv(String(name), String(value)); },
    delete(name) { std.unsetenv(String(name)); },
    has(name) { return env.get(name) !== undefined; },
    toObject() { const o = std.getenviron(); for (const k of HIDDEN) delete o[k]; return o; },
  };

  function serve(a, b) {
    let opts = {}, fn = null;
    if (typeof a === "function") fn = a;
    else if (a && typeof a === "object") { opts = a; fn = typeof b === "function" ? b : a.handler; }
    if (typeof fn !== "function") throw new TypeError("Deno.serve needs a handler function");
    handler = fn; serveOptions = opts;
    const addr = { transport: "tcp", hostname: opts.hostname || "0.0.0.0", port: opts.port || 8000 };
    if (typeof opts.onListen === "function") { try { opts.onListen(addr); } catch (e) { console.error(e); } }
    return { addr, finished: new Promise(() => {}), ref() {}, unref() {}, shutdown: async () => {}, async [Symbol.asyncDispose]() {} };
  }

  const Deno = {
    serve, env, errors, args: [], pid: 1, ppid: 0, noColor: true, mainModule: "file:///main.ts",
    version: { deno: "2.1.4", v8: "12.9.0", typescript: "5.6.2" },
    build: { target: "x86_64-unknown-linux-gnu", arch: "x86_64", os: "linux", vendor: "unknown", env: "gnu" },
    inspect: (v) => mb.format([v]),
    memoryUsage: () => ({ rss: 0, heapTotal: 0, heapUsed: 0, external: 0 }),
    hostname: () => "madbase", osRelease: () => "madbase", cwd: () => "/", exit: denied("Deno.exit"),
    readTextFile: deniedAsync("Deno.readTextFile"), readFile: deniedAsync("Deno.readFile"),
    writeTextFile: deniedAsync("Deno.writeTextFile"), writeFile: deniedAsync("Deno.writeFile"),
    readTextFileSync: denied("Deno.readTextFileSync"), readFileSync: denied("Deno.readFileSync"),
    open: deniedAsync("Deno.open"), openSync: denied("Deno.openSync"), stat: deniedAsync("Deno.stat"),
    statSync: denied("Deno.statSync"), readDir: denied("Deno.readDir"), remove: deniedAsync("Deno.remove"),
    mkdir: deniedAsync("Deno.mkdir"), connect: deniedAsync("Deno.connect"), listen: denied("Deno.listen"),
    Command: class { constructor() { throw new errors.PermissionDenied(new NotSupported("Deno.Command").message); } },
    run: denied("Deno.run"), upgradeWebSocket: denied("Deno.upgradeWebSocket"),
  };
  define("Deno", Deno);
  // Outbound WebSockets are not offered (no sockets in the sandbox): the class exists, as in Deno, so libraries
  // that only look for it (supabase-js's realtime client) load; connecting fails the way a refused socket does.
  class WebSocket extends EventTarget {
    static CONNECTING = 0; static OPEN = 1; static CLOSING = 2; static CLOSED = 3;
    constructor(url, protocols) {
      super();
      this.url = String(url); this.protocol = ""; this.extensions = ""; this.binaryType = "blob";
      this.readyState = 0; this.bufferedAmount = 0; void protocols;
      this.onopen = null; this.onmessage = null; this.onerror = null; this.onclose = null;
      setTimeout(() => {
        this.readyState = 3;
        this.dispatchEvent(new Event("error"));
        const close = new Event("close");
        Object.assign(close, { code: 1006, reason: "WebSockets are not available in MadBase functions", wasClean: false });
        this.dispatchEvent(close);
      }, 0);
    }
    send() { throw new DOMException("WebSocket is not open", "InvalidStateError"); }
    close() { this.readyState = 3; }
  }
  define("WebSocket", WebSocket);
  const waiting = [];
  define("EdgeRuntime", { waitUntil: (p) => { waiting.push(Promise.resolve(p).catch((e) => console.error(e))); } });

  // --- host entry points ------------------------------------------------------------------------------
  mb.hide = (names) => { for (const n of names) HIDDEN.add(n); };
  mb.entry = (mod) => {
    if (!handler && mod && mod.default && typeof mod.default.fetch === "function") {
      const target = mod.default;
      handler = (req, info) => target.fetch(req, info);
    }
    mb.bootLogs = false;
    mb.frame("K", { handler: !!handler });
  };
  function readStdin(n) {
    const buf = new ArrayBuffer(n);
    let got = 0;
    while (got < n) { const r = std.in.read(buf, got, n - got); if (r <= 0) break; got += r; }
    return new Uint8Array(buf, 0, got);
  }
  mb.run = () => {
    if (mb.started) return;  // once per instance (a function calling it again gets nothing)
    mb.started = true;
    written = 0; mb.resetLogs();
    const head = JSON.parse(std.in.getline());
    mb.reseed(head.entropy);
    mb.baseUrl = head.url;
    const body = head.body_length ? readStdin(head.body_length) : null;
    const req = mb.incomingRequest(head.url, head.method, head.headers);
    if (body && body.length) req._setBytes(body);
    const info = { remoteAddr: { transport: "tcp", hostname: head.remote_addr || "127.0.0.1", port: 0 }, completed: new Promise(() => {}) };
    Promise.resolve()
      .then(() => { if (!handler) throw new TypeError("The function registered no handler: call Deno.serve(handler) or export default { fetch }"); return handler(req, info); })
      .then(respond)
      .catch(async (err) => {
        if (err instanceof InternalError && /out of memory/.test(err.message)) { mb.frame("X", { kind: "memory", message: String(err.message) }); return; }
        console.error("Uncaught (in handler)", err);
        if (typeof serveOptions.onError === "function") {
          try { await respond(await serveOptions.onError(err)); return; } catch (e) { console.error(e); }
        }
        mb.frame("R", { status: 500, headers: [["content-type", "text/plain;charset=UTF-8"]] }, mb.utf8Encode("Internal Server Error"));
      });
  };
  async function respond(res) {
    if (!(res instanceof Response)) throw new TypeError("Return value from serve handler must be a response or a promise resolving to a response");
    const bytes = await res._take();
    const headers = res.headers._raw();
    mb.frame("R", { status: res.status, statusText: res.statusText, headers }, bytes);
  }
  mb.report = () => { mb.frame("S", { timer: mb.nextDeadline(), fetches: mb.fetches.size }); };
  mb.tick = () => { mb.runTimers(); };
  // QuickJS's own modules (files, processes) stay out of reach of function code: the runtime holds them
  for (const n of ["std", "os", "bjson", "scriptArgs", "print"]) delete globalThis[n];
  // function code sees only the host's entry points, frozen; the internals stay in the runtime's closures
  const api = Object.freeze({
    run: mb.run, settle: mb.settle, settleB64: mb.settleB64, reject: mb.reject, report: mb.report, tick: mb.tick,
    entry: (m) => { if (!mb.booted) { mb.booted = true; mb.entry(m); } },
  });
  delete globalThis.__madbase;
  Object.defineProperty(globalThis, "__madbase", { value: api, enumerable: false, writable: false, configurable: false });
})();
