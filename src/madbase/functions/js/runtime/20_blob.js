// MadBase JS runtime, part 3: Blob, File, FormData (with multipart encode/parse), a small ReadableStream.
"use strict";
(() => {
  const mb = __madbase, define = mb.define;

  class Blob {
    #bytes; #type;
    constructor(parts = [], options = {}) {
      const chunks = [];
      for (const p of parts) {
        if (p instanceof Blob) chunks.push(p.#bytes);
        else if (p instanceof ArrayBuffer || ArrayBuffer.isView(p)) chunks.push(mb.toBytes(p).slice());
        else chunks.push(mb.utf8Encode(String(p)));
      }
      this.#bytes = mb.concatBytes(chunks);
      this.#type = options.type ? String(options.type).toLowerCase() : "";
    }
    static _bytes(blob) { return blob.#bytes; }
    get size() { return this.#bytes.length; }
    get type() { return this.#type; }
    slice(start = 0, end = this.size, type = "") {
      const b = new Blob([], { type });
      b.#bytes = this.#bytes.slice(start, end);
      return b;
    }
    async text() { return mb.utf8Decode(this.#bytes); }
    async arrayBuffer() { return this.#bytes.slice().buffer; }
    async bytes() { return this.#bytes.slice(); }
    stream() { return mb.streamOf(this.#bytes); }
    get [Symbol.toStringTag]() { return "Blob"; }
  }
  class File extends Blob {
    constructor(parts, name, options = {}) {
      super(parts, options);
      this.name = String(name);
      this.lastModified = options.lastModified ?? Date.now();
    }
    get [Symbol.toStringTag]() { return "File"; }
  }
  define("Blob", Blob);
  define("File", File);

  class FormData {
    #list = [];
    constructor(form) { if (form !== undefined) throw new TypeError("FormData from a form element is not supported"); }
    #entry(name, value, filename) {
      if (value instanceof Blob) {
        if (!(value instanceof File) || filename !== undefined) value = new File([value], filename ?? (value instanceof File ? value.name : "blob"), { type: value.type });
        return [String(name), value];
      }
      return [String(name), String(value)];
    }
    append(name, value, filename) { this.#list.push(this.#entry(name, value, filename)); }
    set(name, value, filename) {
      const e = this.#entry(name, value, filename);
      const i = this.#list.findIndex(([k]) => k === e[0]);
      if (i < 0) this.#list.push(e);
      else { this.#list[i] = e; this.#list = this.#list.filter(([k], j) => k !== e[0] || j === i); }
    }
    delete(name) { name = String(name); this.#list = this.#list.filter(([k]) => k !== name); }
    get(name) { name = String(name); const e = this.#list.find(([k]) => k === name); return e ? e[1] : null; }
    getAll(name) { name = String(name); return this.#list.filter(([k]) => k === name).map(([, v]) => v); }
    has(name) { name = String(name); return this.#list.some(([k]) => k === name); }
    forEach(fn, self) { for (const [k, v] of this.#list) fn.call(self, v, k, this); }
    *entries() { for (const [k, v] of this.#list) yield [k, v]; }
    *keys() { for (const [k] of this.#list) yield k; }
    *values() { for (const [, v] of this.#list) yield v; }
    [Symbol.iterator]() { return this.entries(); }
    get [Symbol.toStringTag]() { return "FormData"; }
  }
  define("FormData", FormData);

  const esc = (s) => s.replace(/\r\n|\r|\n/g, "\r\n").replace(/"/g, "%22").replace(/\r\n/g, "%0D%0A");
  mb.encodeMultipart = (form) => {
    const boundary = "----madbase" + Math.random().toString(16).slice(2) + Math.random().toString(16).slice(2);
    const chunks = [];
    for (const [name, value] of form) {
      let head = `--${boundary}\r\nContent-Disposition: form-data; name="${esc(name)}"`;
      if (value instanceof Blob) {
        head += `; filename="${esc(value.name ?? "blob")}"\r\nContent-Type: ${value.type || "application/octet-stream"}\r\n\r\n`;
        chunks.push(mb.utf8Encode(head), Blob._bytes(value), mb.utf8Encode("\r\n"));
      } else chunks.push(mb.utf8Encode(`${head}\r\n\r\n${value}\r\n`));
    }
    chunks.push(mb.utf8Encode(`--${boundary}--\r\n`));
    return { bytes: mb.concatBytes(chunks), type: `multipart/form-data; boundary=${boundary}` };
  };
  function indexOf(hay, needle, from) {
    outer: for (let i = from; i <= hay.length - needle.length; i++) {
      for (let j = 0; j < needle.length; j++) if (hay[i + j] !== needle[j]) continue outer;
      return i;
    }
    return -1;
  }
  mb.parseMultipart = (bytes, contentType) => {
    const m = /boundary=(?:"([^"]+)"|([^;\s]+))/i.exec(contentType || "");
    if (!m) throw new TypeError("Missing boundary in multipart/form-data content type");
    const delim = mb.utf8Encode("--" + (m[1] || m[2]));
    const form = new FormData();
    let pos = indexOf(bytes, delim, 0);
    if (pos < 0) throw new TypeError("Body is not valid multipart/form-data");
    while (true) {
      pos += delim.length;
      if (bytes[pos] === 45 && bytes[pos + 1] === 45) break; // "--": the end
      if (bytes[pos] === 13) pos += 2;
      const headEnd = indexOf(bytes, mb.utf8Encode("\r\n\r\n"), pos);
      if (headEnd < 0) throw new TypeError("Body is not valid multipart/form-data");
      const head = mb.utf8Decode(bytes.subarray(pos, headEnd));
      const next = indexOf(bytes, delim, headEnd + 4);
      if (next < 0) throw new TypeError("Body is not valid multipart/form-data");
      const body = bytes.slice(headEnd + 4, next - 2);
      const disp = /content-disposition:[^\r\n]*?\bname="([^"]*)"/i.exec(head);
      const fname = /content-disposition:[^\r\n]*?\bfilename="([^"]*)"/i.exec(head);
      const ctype = /content-type:\s*([^\r\n]*)/i.exec(head);
      if (disp) {
        if (fname) form.append(disp[1], new File([body], fname[1], { type: ctype ? ctype[1].trim() : "application/octet-stream" }));
        else form.append(disp[1], mb.utf8Decode(body));
      }
      pos = next;
    }
    return form;
  };

  // --- ReadableStream: enough for Response bodies, async iteration and server-sent events (buffered) ---
  class ReadableStreamDefaultController {
    #s;
    constructor(s) { this.#s = s; }
    get desiredSize() { return 1; }
    enqueue(chunk) { this.#s._push({ value: chunk, done: false }); }
    close() { this.#s._push({ value: undefined, done: true }); }
    error(e) { this.#s._fail(e); }
  }
  class ReadableStream {
    #queue = []; #waiters = []; #closed = false; #error = null; #source; #controller; #pulling = false;
    locked = false;
    constructor(source = {}) {
      this.#source = source;
      this.#controller = new ReadableStreamDefaultController(this);
      if (source.start) {
        try { const r = source.start(this.#controller); if (r && r.then) r.catch((e) => this._fail(e)); }
        catch (e) { this._fail(e); }
      }
    }
    static from(iterable) {
      const it = (iterable[Symbol.asyncIterator] || iterable[Symbol.iterator]).call(iterable);
      return new ReadableStream({ async pull(c) { const r = await it.next(); r.done ? c.close() : c.enqueue(r.value); } });
    }
    _push(item) {
      if (this.#closed) return;
      if (item.done) this.#closed = true;
      const w = this.#waiters.shift();
      if (w) w.resolve(item); else this.#queue.push(item);
      if (item.done) for (const x of this.#waiters.splice(0)) x.resolve(item);
    }
    _fail(e) { this.#error = e; this.#closed = true; for (const w of this.#waiters.splice(0)) w.reject(e); }
    _read() {
      if (this.#queue.length) return Promise.resolve(this.#queue.shift());
      if (this.#error) return Promise.reject(this.#error);
      if (this.#closed) return Promise.resolve({ value: undefined, done: true });
      const p = new Promise((resolve, reject) => this.#waiters.push({ resolve, reject }));
      if (this.#source.pull && !this.#pulling) {
        this.#pulling = true;
        Promise.resolve().then(() => this.#source.pull(this.#controller)).then(
          () => { this.#pulling = false; }, (e) => { this.#pulling = false; this._fail(e); });
      }
      return p;
    }
    getReader() {
      if (this.locked) throw new TypeError("ReadableStream is locked");
      this.locked = true;
      const s = this;
      return {
        read: () => s._read(),
        releaseLock: () => { s.locked = false; },
        cancel: (r) => s.cancel(r),
        closed: Promise.resolve(),
      };
    }
    async cancel(reason) { this.#closed = true; this.#queue = []; if (this.#source.cancel) await this.#source.cancel(reason); }
    async *[Symbol.asyncIterator]() {
      const r = this.getReader();
      try { while (true) { const { value, done } = await r.read(); if (done) return; yield value; } }
      finally { r.releaseLock(); }
    }
    values() { return this[Symbol.asyncIterator](); }
    async pipeTo(dest) { const w = dest.getWriter(); for await (const c of this) await w.write(c); await w.close(); }
    pipeThrough(t) { this.pipeTo(t.writable); return t.readable; }
    tee() {
      const chunks = [], readers = [[], []], self = this;
      let done = false, pumping = null;
      const pump = () => pumping || (pumping = (async () => { for await (const c of self) chunks.push(c); done = true; })());
      const branch = () => { let i = 0; return new ReadableStream({ async pull(c) { await pump(); if (i < chunks.length) c.enqueue(chunks[i++]); else if (done) c.close(); } }); };
      void readers;
      return [branch(), branch()];
    }
  }
  class WritableStream {
    #sink;
    constructor(sink = {}) { this.#sink = sink; }
    getWriter() {
      const sink = this.#sink;
      return {
        write: async (c) => { if (sink.write) await sink.write(c); },
        close: async () => { if (sink.close) await sink.close(); },
        abort: async (r) => { if (sink.abort) await sink.abort(r); },
        releaseLock() {}, ready: Promise.resolve(), closed: Promise.resolve(),
      };
    }
  }
  class TransformStream {
    constructor(t = {}) {
      let ctl;
      this.readable = new ReadableStream({ start(c) { ctl = c; } });
      const controller = { enqueue: (c) => ctl.enqueue(c), terminate: () => ctl.close(), error: (e) => ctl.error(e) };
      this.writable = new WritableStream({
        write: async (c) => { if (t.transform) await t.transform(c, controller); else ctl.enqueue(c); },
        close: async () => { if (t.flush) await t.flush(controller); ctl.close(); },
      });
    }
  }
  class TextEncoderStream extends TransformStream {
    constructor() { const e = new TextEncoder(); super({ transform(c, ctl) { ctl.enqueue(e.encode(c)); } }); }
  }
  class TextDecoderStream extends TransformStream {
    constructor(label, opts) {
      const d = new TextDecoder(label, opts);
      super({ transform(c, ctl) { const s = d.decode(c, { stream: true }); if (s) ctl.enqueue(s); }, flush(ctl) { const s = d.decode(); if (s) ctl.enqueue(s); } });
    }
  }
  mb.streamOf = (bytes) => new ReadableStream({ start(c) { if (bytes.length) c.enqueue(bytes); c.close(); } });
  mb.readAll = async (stream) => {
    const chunks = [];
    for await (const c of stream) chunks.push(typeof c === "string" ? mb.utf8Encode(c) : mb.toBytes(c));
    return mb.concatBytes(chunks);
  };
  define("ReadableStream", ReadableStream);
  define("ReadableStreamDefaultController", ReadableStreamDefaultController);
  define("WritableStream", WritableStream);
  define("TransformStream", TransformStream);
  define("TextEncoderStream", TextEncoderStream);
  define("TextDecoderStream", TextDecoderStream);
})();
