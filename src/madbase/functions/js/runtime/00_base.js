// MadBase JS runtime, part 1: the host channel, console, text encoding, events, abort, timers.
// The runtime files are concatenated in name order into one script evaluated once per function snapshot
// (see engine.py); each file adds to the shared `__mb` internals object and to globalThis.
"use strict";
const __mb = { fetches: new Map(), nextId: 1, timers: new Map(), nextTimer: 1, bootLogs: true };
// internals shared by the runtime files; 50_deno.js replaces this global by the frozen host entry points
Object.defineProperty(globalThis, "__madbase", { value: __mb, enumerable: false, configurable: true });

(() => {
  const std = globalThis.std;
  const define = (name, value) =>
    Object.defineProperty(globalThis, name, { value, writable: true, configurable: true, enumerable: false });
  __mb.define = define;

  // --- UTF-8 -------------------------------------------------------------------------------------------
  // Interpreted JS costs thousands of wasm instructions per byte here, so the fast paths use QuickJS's native
  // code: encodeURIComponent/unescape give the UTF-8 bytes as a Latin-1 string, and bjson.write stores such a
  // string's bytes verbatim at the end of its output; escape/decodeURIComponent decode UTF-8. The loops below
  // remain for lone surrogates and invalid input (with U+FFFD replacement).
  const bjson = globalThis.bjson;
  const fastBytes = (() => { try { const b = new Uint8Array(bjson.write("\x00\xff")); return b[b.length - 2] === 0 && b[b.length - 1] === 255; } catch { return false; } })();
  // the bytes of a Latin-1 ("binary") string, e.g. what atob returns
  function binToBytes(bin) {
    if (!bin.length) return new Uint8Array(0);
    if (fastBytes) { const buf = bjson.write(bin); return new Uint8Array(buf, buf.byteLength - bin.length).slice(); }
    const out = new Uint8Array(bin.length);
    for (let i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i);
    return out;
  }
  function utf8Encode(str) {
    str = String(str);
    if (fastBytes) {
      let bin = null;
      try { bin = unescape(encodeURIComponent(str)); } catch { /* lone surrogate: the loop replaces it */ }
      if (bin !== null) return binToBytes(bin);
    }
    return utf8EncodeLoop(str);
  }
  function utf8EncodeLoop(str) {
    const out = new Uint8Array(str.length * 3);
    let j = 0;
    for (let i = 0; i < str.length; i++) {
      let c = str.charCodeAt(i);
      if (c < 0x80) { out[j++] = c; continue; }
      if (c >= 0xd800 && c <= 0xdbff && i + 1 < str.length) {
        const d = str.charCodeAt(i + 1);
        if (d >= 0xdc00 && d <= 0xdfff) { c = 0x10000 + ((c - 0xd800) << 10) + (d - 0xdc00); i++; }
        else c = 0xfffd;
      } else if (c >= 0xd800 && c <= 0xdfff) c = 0xfffd;
      if (c < 0x800) { out[j++] = 0xc0 | (c >> 6); out[j++] = 0x80 | (c & 63); }
      else if (c < 0x10000) { out[j++] = 0xe0 | (c >> 12); out[j++] = 0x80 | ((c >> 6) & 63); out[j++] = 0x80 | (c & 63); }
      else {
        out[j++] = 0xf0 | (c >> 18); out[j++] = 0x80 | ((c >> 12) & 63);
        out[j++] = 0x80 | ((c >> 6) & 63); out[j++] = 0x80 | (c & 63);
      }
    }
    return out.slice(0, j);
  }
  function utf8Decode(bytes, fatal) {
    if (!bytes.length) return "";
    let bin = "";
    for (let i = 0; i < bytes.length; i += 8192) bin += String.fromCharCode.apply(null, bytes.subarray(i, i + 8192));
    try { return decodeURIComponent(escape(bin)); } catch { return utf8DecodeLoop(bytes, fatal); }
  }
  function utf8DecodeLoop(bytes, fatal) {
    let s = "", i = 0;
    const n = bytes.length, parts = [];
    while (i < n) {
      const b = bytes[i];
      let c = -1, need = 0;
      if (b < 0x80) { c = b; } else if (b >= 0xc2 && b < 0xe0) { c = b & 31; need = 1; }
      else if (b >= 0xe0 && b < 0xf0) { c = b & 15; need = 2; } else if (b >= 0xf0 && b < 0xf5) { c = b & 7; need = 3; }
      i++;
      if (need) {
        let k = 0;
        for (; k < need && i < n && (bytes[i] & 0xc0) === 0x80; k++, i++) c = (c << 6) | (bytes[i] & 63);
        if (k < need || (need === 2 && (c < 0x800 || (c >= 0xd800 && c <= 0xdfff))) || (need === 3 && (c < 0x10000 || c > 0x10ffff))) c = -1;
      }
      if (c < 0) { if (fatal) throw new TypeError("The encoded data is not valid UTF-8"); c = 0xfffd; }
      if (c >= 0x10000) { c -= 0x10000; s += String.fromCharCode(0xd800 + (c >> 10), 0xdc00 + (c & 1023)); }
      else s += String.fromCharCode(c);
      if (s.length > 8192) { parts.push(s); s = ""; }
    }
    parts.push(s);
    return parts.join("");
  }
  function toBytes(data) {
    if (data instanceof Uint8Array) return data;
    if (data instanceof ArrayBuffer) return new Uint8Array(data);
    if (ArrayBuffer.isView(data)) return new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
    if (typeof SharedArrayBuffer !== "undefined" && data instanceof SharedArrayBuffer) return new Uint8Array(data);
    throw new TypeError("Expected an ArrayBuffer or ArrayBufferView");
  }
  function concatBytes(chunks) {
    let total = 0;
    for (const c of chunks) total += c.length;
    const out = new Uint8Array(total);
    let at = 0;
    for (const c of chunks) { out.set(c, at); at += c.length; }
    return out;
  }
  Object.assign(__mb, { utf8Encode, utf8Decode, toBytes, concatBytes, binToBytes });

  class TextEncoder {
    get encoding() { return "utf-8"; }
    encode(input = "") { return utf8Encode(input); }
    encodeInto(input, dest) {
      const bytes = utf8Encode(input);
      const n = Math.min(bytes.length, dest.length);
      dest.set(bytes.subarray(0, n));
      return { read: input.length, written: n };
    }
  }
  class TextDecoder {
    #fatal; #ignoreBOM; #pending = null;
    constructor(label = "utf-8", options = {}) {
      const l = String(label).toLowerCase().trim();
      if (l !== "utf-8" && l !== "utf8" && l !== "unicode-1-1-utf-8") throw new RangeError(`The encoding "${label}" is not supported`);
      this.#fatal = !!options.fatal; this.#ignoreBOM = !!options.ignoreBOM;
    }
    get encoding() { return "utf-8"; }
    get fatal() { return this.#fatal; }
    get ignoreBOM() { return this.#ignoreBOM; }
    decode(input, options = {}) {
      let bytes = input === undefined ? new Uint8Array(0) : toBytes(input);
      if (this.#pending) { bytes = concatBytes([this.#pending, bytes]); this.#pending = null; }
      if (options.stream) {
        // keep an incomplete trailing sequence for the next call
        let cut = bytes.length, k = bytes.length - 1, seen = 0;
        while (k >= 0 && seen < 3 && (bytes[k] & 0xc0) === 0x80) { k--; seen++; }
        if (k >= 0) {
          const b = bytes[k], need = b >= 0xf0 ? 3 : b >= 0xe0 ? 2 : b >= 0xc0 ? 1 : 0;
          if (need > seen) cut = k;
        }
        if (cut < bytes.length) { this.#pending = bytes.slice(cut); bytes = bytes.subarray(0, cut); }
      }
      if (!this.#ignoreBOM && bytes.length >= 3 && bytes[0] === 0xef && bytes[1] === 0xbb && bytes[2] === 0xbf) bytes = bytes.subarray(3);
      return utf8Decode(bytes, this.#fatal);
    }
  }
  define("TextEncoder", TextEncoder);
  define("TextDecoder", TextDecoder);

  // --- console → stderr (the function's logs) ---------------------------------------------------------
  function fmt(v, depth = 0) {
    if (typeof v === "string") return depth ? JSON.stringify(v) : v;
    if (v instanceof Error) return (v.stack ? `${v.name}: ${v.message}\n${v.stack}` : `${v.name}: ${v.message}`).trimEnd();
    if (typeof v === "function") return `[Function: ${v.name || "anonymous"}]`;
    if (typeof v === "bigint") return `${v}n`;
    if (typeof v === "symbol" || v === undefined || v === null || typeof v !== "object") return String(v);
    if (depth > 3) return "[Object]";
    try {
      if (Array.isArray(v)) return `[ ${v.map((x) => fmt(x, depth + 1)).join(", ")} ]`;
      if (v instanceof Map) return `Map(${v.size}) { ${[...v].map(([k, x]) => `${fmt(k, depth + 1)} => ${fmt(x, depth + 1)}`).join(", ")} }`;
      if (ArrayBuffer.isView(v)) return `${v.constructor.name}(${v.length}) [ ${Array.prototype.slice.call(v, 0, 50).join(", ")} ]`;
      const keys = Object.keys(v);
      const name = v.constructor && v.constructor !== Object && v.constructor.name ? v.constructor.name + " " : "";
      if (!keys.length) return `${name}{}`;
      return `${name}{ ${keys.map((k) => `${/^[A-Za-z_$][\w$]*$/.test(k) ? k : JSON.stringify(k)}: ${fmt(v[k], depth + 1)}`).join(", ")} }`;
    } catch (e) { return String(v); }
  }
  function format(args) {
    if (typeof args[0] === "string" && /%[sdifoOjc%]/.test(args[0]) && args.length > 1) {
      let i = 1;
      const first = args[0].replace(/%[sdifoOjc%]/g, (m) => {
        if (m === "%%") return "%";
        if (i >= args.length) return m;
        const a = args[i++];
        switch (m) {
          case "%s": return typeof a === "string" ? a : fmt(a, 1);
          case "%d": case "%i": return String(parseInt(a, 10));
          case "%f": return String(Number(a));
          case "%c": return "";
          default: return fmt(a, 1);
        }
      });
      return [first, ...args.slice(i).map((a) => fmt(a))].join(" ");
    }
    return args.map((a) => fmt(a)).join(" ");
  }
  // logs are capped per request (they are kept in host memory): the rest is counted, not written
  const LOG_CAP = 1024 * 1024;
  let logged = 0, dropped = 0;
  __mb.resetLogs = () => { logged = 0; dropped = 0; };
  function log(level, args) {
    const line = (level ? level + ": " : "") + format(args) + "\n";
    if (logged + line.length > LOG_CAP) {
      if (!dropped) std.err.puts("[madbase: log limit reached, further output dropped]\n");
      dropped += line.length;
      return;
    }
    logged += line.length;
    std.err.puts(line);
  }
  const counts = new Map(), timersT = new Map();
  const console = {
    log: (...a) => log("", a), info: (...a) => log("", a), debug: (...a) => log("", a),
    warn: (...a) => log("WARN", a), error: (...a) => log("ERROR", a), trace: (...a) => log("", a),
    assert: (cond, ...a) => { if (!cond) log("ERROR", ["Assertion failed", ...a]); },
    dir: (v) => log("", [v]), table: (v) => log("", [v]), group: (...a) => { if (a.length) log("", a); },
    groupEnd: () => {}, groupCollapsed: (...a) => { if (a.length) log("", a); },
    count: (label = "default") => { const n = (counts.get(label) || 0) + 1; counts.set(label, n); log("", [`${label}: ${n}`]); },
    countReset: (label = "default") => counts.delete(label),
    time: (label = "default") => timersT.set(label, Date.now()),
    timeLog: (label = "default", ...a) => log("", [`${label}: ${Date.now() - (timersT.get(label) || Date.now())}ms`, ...a]),
    timeEnd: (label = "default") => { log("", [`${label}: ${Date.now() - (timersT.get(label) || Date.now())}ms`]); timersT.delete(label); },
  };
  define("console", console);
  __mb.format = format;

  // --- Event, EventTarget, AbortController ------------------------------------------------------------
  class Event {
    #type; #defaultPrevented = false;
    constructor(type, init = {}) { this.#type = String(type); this.bubbles = !!init.bubbles; this.cancelable = !!init.cancelable; this.timeStamp = Date.now(); this.target = null; this.currentTarget = null; }
    get type() { return this.#type; }
    get defaultPrevented() { return this.#defaultPrevented; }
    preventDefault() { if (this.cancelable) this.#defaultPrevented = true; }
    stopPropagation() {}
    stopImmediatePropagation() { this._stop = true; }
  }
  class CustomEvent extends Event { constructor(type, init = {}) { super(type, init); this.detail = init.detail ?? null; } }
  class EventTarget {
    #listeners = new Map();
    addEventListener(type, fn, opts) {
      if (!fn) return;
      const list = this.#listeners.get(type) || [];
      if (list.some((l) => l.fn === fn)) return;
      const once = typeof opts === "object" && opts !== null && !!opts.once;
      list.push({ fn, once });
      this.#listeners.set(type, list);
      if (typeof opts === "object" && opts && opts.signal) opts.signal.addEventListener("abort", () => this.removeEventListener(type, fn));
    }
    removeEventListener(type, fn) {
      const list = this.#listeners.get(type);
      if (list) this.#listeners.set(type, list.filter((l) => l.fn !== fn));
    }
    dispatchEvent(event) {
      try { event.target = this; event.currentTarget = this; } catch { /* read-only */ }
      const handler = this["on" + event.type];
      const list = [...(this.#listeners.get(event.type) || [])];
      if (typeof handler === "function") list.unshift({ fn: handler, once: false });
      for (const l of list) {
        if (l.once) this.removeEventListener(event.type, l.fn);
        try { typeof l.fn === "function" ? l.fn.call(this, event) : l.fn.handleEvent(event); }
        catch (e) { console.error(e); }
        if (event._stop) break;
      }
      return !event.defaultPrevented;
    }
  }
  class AbortSignal extends EventTarget {
    constructor(key) { super(); if (key !== __mb) throw new TypeError("Illegal constructor"); this.aborted = false; this.reason = undefined; this.onabort = null; }
    throwIfAborted() { if (this.aborted) throw this.reason; }
    static abort(reason) { const c = new AbortController(); c.abort(reason); return c.signal; }
    static timeout(ms) {
      const c = new AbortController();
      setTimeout(() => c.abort(new DOMException("The signal has been aborted", "TimeoutError")), ms);
      return c.signal;
    }
    static any(signals) {
      const c = new AbortController();
      for (const s of signals) {
        if (s.aborted) { c.abort(s.reason); break; }
        s.addEventListener("abort", () => c.abort(s.reason), { once: true });
      }
      return c.signal;
    }
  }
  class AbortController {
    #signal = new AbortSignal(__mb);
    get signal() { return this.#signal; }
    abort(reason) {
      const s = this.#signal;
      if (s.aborted) return;
      s.aborted = true;
      s.reason = reason === undefined ? new DOMException("The signal has been aborted", "AbortError") : reason;
      s.dispatchEvent(new Event("abort"));
    }
  }
  define("Event", Event); define("CustomEvent", CustomEvent); define("EventTarget", EventTarget);
  define("AbortSignal", AbortSignal); define("AbortController", AbortController);
  // Deno exposes addEventListener on globalThis (e.g. "unload", "beforeunload"); accept and keep them
  const globalTarget = new EventTarget();
  define("addEventListener", (...a) => globalTarget.addEventListener(...a));
  define("removeEventListener", (...a) => globalTarget.removeEventListener(...a));
  define("dispatchEvent", (e) => globalTarget.dispatchEvent(e));

  // --- timers: kept in JS; the host sleeps until the next deadline and calls __madbase.tick() ---------
  function setTimer(fn, ms, args, repeat) {
    const id = __mb.nextTimer++;
    const delay = Math.max(0, Number(ms) || 0);
    __mb.timers.set(id, { fn, args, at: Date.now() + delay, every: repeat ? Math.max(1, delay) : 0 });
    return id;
  }
  define("setTimeout", (fn, ms, ...args) => setTimer(fn, ms, args, false));
  define("setInterval", (fn, ms, ...args) => setTimer(fn, ms, args, true));
  define("clearTimeout", (id) => { __mb.timers.delete(typeof id === "object" && id ? Number(id) : id); });
  define("clearInterval", (id) => { __mb.timers.delete(id); });
  __mb.runTimers = () => {
    const now = Date.now();
    const due = [...__mb.timers].filter(([, t]) => t.at <= now).sort((a, b) => a[1].at - b[1].at);
    for (const [id, t] of due) {
      if (!__mb.timers.has(id)) continue;
      if (t.every) t.at = now + t.every; else __mb.timers.delete(id);
      try { typeof t.fn === "function" ? t.fn(...t.args) : (0, eval)(String(t.fn)); }
      catch (e) { console.error("Uncaught", e); }
    }
  };
  __mb.nextDeadline = () => {
    let min = Infinity;
    for (const t of __mb.timers.values()) if (t.at < min) min = t.at;
    return min === Infinity ? -1 : Math.max(0, min - Date.now());
  };

  if (typeof globalThis.structuredClone !== "function") {
    define("structuredClone", (v) => {
      const seen = new Map();
      const clone = (x) => {
        if (typeof x !== "object" || x === null) return x;
        if (seen.has(x)) return seen.get(x);
        let out;
        if (x instanceof Date) out = new Date(x.getTime());
        else if (x instanceof RegExp) out = new RegExp(x.source, x.flags);
        else if (ArrayBuffer.isView(x)) out = x.slice();
        else if (x instanceof ArrayBuffer) out = x.slice(0);
        else if (x instanceof Map) { out = new Map(); seen.set(x, out); for (const [k, y] of x) out.set(clone(k), clone(y)); return out; }
        else if (x instanceof Set) { out = new Set(); seen.set(x, out); for (const y of x) out.add(clone(y)); return out; }
        else if (Array.isArray(x)) { out = []; seen.set(x, out); for (const y of x) out.push(clone(y)); return out; }
        else if (typeof x === "function") throw new DOMException("function could not be cloned", "DataCloneError");
        else { out = {}; seen.set(x, out); for (const k of Object.keys(x)) out[k] = clone(x[k]); return out; }
        seen.set(x, out);
        return out;
      };
      return clone(v);
    });
  }
  define("self", globalThis);
})();
