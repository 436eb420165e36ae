// MadBase JS runtime, part 4: Headers, Request, Response and fetch (outbound requests go through the host).
"use strict";
(() => {
  const mb = __madbase, define = mb.define;
  const TOKEN = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;
  const KNOWN = new Set(["accept", "accept-encoding", "accept-language", "apikey", "authorization", "cache-control",
    "connection", "content-disposition", "content-encoding", "content-length", "content-profile", "content-range",
    "content-type", "cookie", "etag", "host", "if-none-match", "location", "origin", "prefer", "range", "referer",
    "set-cookie", "user-agent", "x-client-info", "x-forwarded-for", "x-forwarded-host", "x-forwarded-proto",
    "x-region", "x-upsert", "accept-profile", "access-control-allow-origin", "access-control-allow-headers",
    "access-control-allow-methods", "vary", "date", "server", "content-location", "x-project-ref"]);

  class Headers {
    #list = [];  // [lower-case name, value]
    constructor(init) {
      if (init instanceof Headers) this.#list = init.#list.map(([k, v]) => [k, v]);
      else if (init && typeof init === "object") {
        if (typeof init[Symbol.iterator] === "function") for (const pair of init) { const p = [...pair]; if (p.length !== 2) throw new TypeError("Header pairs must be [name, value]"); this.append(p[0], p[1]); }
        else for (const k of Object.keys(init)) this.append(k, init[k]);
      }
    }
    // validation is by native string functions where it can be: a regex costs ~10^4 wasm instructions here
    static #norm(name, value) {
      name = String(name);
      const lower = name.toLowerCase();
      if (!KNOWN.has(lower)) {
        if (!TOKEN.test(name)) throw new TypeError(`Invalid header name: "${name}"`);
        KNOWN.add(lower);
      }
      if (value === undefined) return [lower];
      value = String(value);
      if (value.charCodeAt(0) <= 32 || value.charCodeAt(value.length - 1) <= 32) value = value.replace(/^[\t\n\r ]+|[\t\n\r ]+$/g, "");
      if (value.indexOf("\n") >= 0 || value.indexOf("\r") >= 0 || value.indexOf("\0") >= 0) throw new TypeError(`Invalid header value for "${name}"`);
      return [lower, value];
    }
    static _trusted(list) { const h = new Headers(); h.#list = list.map(([k, v]) => [k.toLowerCase(), v]); return h; }
    append(name, value) { this.#list.push(Headers.#norm(name, value)); }
    set(name, value) {
      const [k, v] = Headers.#norm(name, value);
      const i = this.#list.findIndex(([a]) => a === k);
      if (i < 0) this.#list.push([k, v]);
      else { this.#list[i] = [k, v]; this.#list = this.#list.filter(([a], j) => a !== k || j === i); }
    }
    delete(name) { const [k] = Headers.#norm(name); this.#list = this.#list.filter(([a]) => a !== k); }
    get(name) {
      const [k] = Headers.#norm(name);
      const vals = this.#list.filter(([a]) => a === k).map(([, v]) => v);
      return vals.length ? vals.join(", ") : null;
    }
    getSetCookie() { return this.#list.filter(([a]) => a === "set-cookie").map(([, v]) => v); }
    has(name) { const [k] = Headers.#norm(name); return this.#list.some(([a]) => a === k); }
    *entries() {
      const names = [...new Set(this.#list.map(([k]) => k))].sort();
      for (const n of names) {
        if (n === "set-cookie") for (const v of this.getSetCookie()) yield [n, v];
        else yield [n, this.get(n)];
      }
    }
    *keys() { for (const [k] of this.entries()) yield k; }
    *values() { for (const [, v] of this.entries()) yield v; }
    forEach(fn, self) { for (const [k, v] of this.entries()) fn.call(self, v, k, this); }
    [Symbol.iterator]() { return this.entries(); }
    _raw() { return this.#list.map(([k, v]) => [k, v]); }
    get [Symbol.toStringTag]() { return "Headers"; }
  }
  define("Headers", Headers);

  // A body is kept as bytes (or a ReadableStream until first read); extract() turns any BodyInit into that.
  function extract(body) {
    if (body === null || body === undefined) return { bytes: null, type: null };
    if (typeof body === "string") return { bytes: mb.utf8Encode(body), type: "text/plain;charset=UTF-8" };
    if (body instanceof URLSearchParams) return { bytes: mb.utf8Encode(body.toString()), type: "application/x-www-form-urlencoded;charset=UTF-8" };
    if (body instanceof FormData) { const e = mb.encodeMultipart(body); return { bytes: e.bytes, type: e.type }; }
    if (body instanceof Blob) return { bytes: Blob._bytes(body), type: body.type || null };
    if (body instanceof ArrayBuffer || ArrayBuffer.isView(body)) return { bytes: mb.toBytes(body).slice(), type: null };
    if (body instanceof ReadableStream) return { stream: body, type: null };
    if (typeof body[Symbol.asyncIterator] === "function") return { stream: ReadableStream.from(body), type: null };
    return { bytes: mb.utf8Encode(String(body)), type: "text/plain;charset=UTF-8" };
  }

  class Body {
    #bytes = null; #stream = null; #used = false;
    _init(body, headers) {
      const e = extract(body);
      this.#bytes = e.bytes ?? null;
      this.#stream = e.stream ?? null;
      if (e.type && !headers.has("content-type")) headers.set("content-type", e.type);
    }
    _setBytes(bytes) { this.#bytes = bytes; this.#stream = null; }
    get body() {
      if (this.#stream) return this.#stream;
      if (this.#bytes === null) return null;
      this.#stream = mb.streamOf(this.#bytes);
      this.#bytes = null;
      return this.#stream;
    }
    get bodyUsed() { return this.#used; }
    async _take() {
      if (this.#used) throw new TypeError("Body already consumed");
      this.#used = true;
      if (this.#stream) { const b = await mb.readAll(this.#stream); this.#stream = null; return b; }
      return this.#bytes ?? new Uint8Array(0);
    }
    _peek() { return this.#stream ? null : this.#bytes; }
    _cloneBody(target) {
      if (this.#used) throw new TypeError("Body already consumed");
      if (this.#stream) { const [a, b] = this.#stream.tee(); this.#stream = a; target.#stream = b; }
      else target.#bytes = this.#bytes;
    }
    async arrayBuffer() { return (await this._take()).slice().buffer; }
    async bytes() { return (await this._take()).slice(); }
    async text() { return mb.utf8Decode(await this._take()); }
    async json() { return JSON.parse(await this.text()); }
    async blob() { return new Blob([await this._take()], { type: this.headers.get("content-type") || "" }); }
    async formData() {
      const type = this.headers.get("content-type") || "";
      const bytes = await this._take();
      if (/^multipart\/form-data/i.test(type)) return mb.parseMultipart(bytes, type);
      if (/^application\/x-www-form-urlencoded/i.test(type)) {
        const form = new FormData();
        for (const [k, v] of new URLSearchParams(mb.utf8Decode(bytes))) form.append(k, v);
        return form;
      }
      throw new TypeError(`Body can not be decoded as form data (content-type "${type}")`);
    }
  }

  const METHODS = ["DELETE", "GET", "HEAD", "OPTIONS", "POST", "PUT", "PATCH"];
  const INCOMING = Symbol("incoming");  // the host's request: URL already normalised, headers from its parser
  mb.incomingRequest = (url, method, headers) => new Request(url, { method, headers: Headers._trusted(headers), [INCOMING]: true });
  class Request extends Body {
    #url; #method; #headers; #signal; #redirect;
    constructor(input, init = {}) {
      super();
      let src = null;
      if (input instanceof Request) src = input;
      this.#url = src ? src.url : init[INCOMING] ? String(input) : new URL(String(input), mb.baseUrl).href;
      let method = init.method ?? (src ? src.method : "GET");
      method = String(method);
      if (METHODS.includes(method.toUpperCase())) method = method.toUpperCase();
      this.#method = method;
      this.#headers = new Headers(init.headers ?? (src ? src.headers : undefined));
      this.#signal = init.signal ?? (src ? src.signal : new AbortController().signal);
      this.#redirect = init.redirect ?? (src ? src.redirect : "follow");
      this.cache = init.cache ?? "default"; this.credentials = init.credentials ?? "same-origin";
      this.mode = init.mode ?? "cors"; this.integrity = init.integrity ?? ""; this.keepalive = !!init.keepalive;
      this.referrer = "about:client"; this.referrerPolicy = ""; this.destination = "";
      if (init.body !== undefined && init.body !== null) {
        if (method === "GET" || method === "HEAD") throw new TypeError("Request with GET/HEAD method cannot have body.");
        this._init(init.body, this.#headers);
      } else if (src && init.body === undefined) src._cloneBody(this);
    }
    get url() { return this.#url; }
    get method() { return this.#method; }
    get headers() { return this.#headers; }
    get signal() { return this.#signal; }
    get redirect() { return this.#redirect; }
    clone() { const r = new Request(this.#url, { method: this.#method, headers: this.#headers, signal: this.#signal, redirect: this.#redirect }); this._cloneBody(r); return r; }
    get [Symbol.toStringTag]() { return "Request"; }
  }

  const NULL_BODY = [101, 103, 204, 205, 304];
  class Response extends Body {
    #status; #statusText; #headers; #type = "default"; #url = ""; #redirected = false;
    constructor(body = null, init = {}) {
      super();
      const status = init.status ?? 200;
      if (!Number.isInteger(status) || status < 200 || status > 599) throw new RangeError(`The status provided (${status}) is outside the range [200, 599].`);
      this.#status = status;
      this.#statusText = init.statusText ?? "";
      this.#headers = new Headers(init.headers);
      if (body !== null && body !== undefined) {
        if (NULL_BODY.includes(status)) throw new TypeError("Response with null body status cannot have body");
        this._init(body, this.#headers);
      }
    }
    static json(data, init = {}) {
      const headers = new Headers(init.headers);
      if (!headers.has("content-type")) headers.set("content-type", "application/json");
      return new Response(JSON.stringify(data), { ...init, headers });
    }
    static error() { const r = new Response(null, { status: 200 }); r.#type = "error"; r.#status = 0; return r; }
    static redirect(url, status = 302) {
      if (![301, 302, 303, 307, 308].includes(status)) throw new RangeError("Invalid redirect status");
      return new Response(null, { status, headers: { location: new URL(url, mb.baseUrl).href } });
    }
    static _from(status, statusText, headers, bytes, url) {
      const r = new Response(null, { status: status < 200 ? 200 : status, statusText, headers });
      r.#status = status; r.#url = url; r.#type = "basic";
      if (bytes && bytes.length) r._setBytes(bytes);
      return r;
    }
    get status() { return this.#status; }
    get statusText() { return this.#statusText; }
    get ok() { return this.#status >= 200 && this.#status < 300; }
    get headers() { return this.#headers; }
    get type() { return this.#type; }
    get url() { return this.#url; }
    get redirected() { return this.#redirected; }
    clone() {
      const r = new Response(null, { status: this.#status < 200 ? 200 : this.#status, statusText: this.#statusText, headers: this.#headers });
      r.#status = this.#status; r.#url = this.#url; r.#type = this.#type;
      this._cloneBody(r);
      return r;
    }
    get [Symbol.toStringTag]() { return "Response"; }
  }
  define("Request", Request);
  define("Response", Response);

  // fetch(): the request is written to the host as an "F" frame; the host performs it (allow-list,
  // limits) and re-enters the guest with __madbase.settle(id, ...) or __madbase.reject(id, message).
  function send(method, url, headers, body, redirect, signal) {
    const id = mb.nextId++;
    const meta = { id, method, url, headers, redirect };
    return new Promise((resolve, reject) => {
      mb.fetches.set(id, { resolve, reject, url });
      if (signal) signal.addEventListener("abort", () => { if (mb.fetches.delete(id)) reject(signal.reason); }, { once: true });
      mb.frame("F", meta, body);
    });
  }
  async function fetch(input, init = undefined) {
    const req = new Request(input, init);
    if (req.signal.aborted) throw req.signal.reason;
    let method = req.method, url = req.url, headers = req.headers._raw();
    let body = method === "GET" || method === "HEAD" ? new Uint8Array(0) : await req._take();
    // redirects are followed here, each hop going through the host again (its allow-list applies to each)
    for (let hops = 0; ; hops++) {
      const res = await send(method, url, headers, body, req.redirect, req.signal);
      const location = res.headers.get("location");
      if (![301, 302, 303, 307, 308].includes(res.status) || !location || req.redirect === "manual") return res;
      if (req.redirect === "error") throw new TypeError(`fetch: redirect to ${location} with redirect: "error"`);
      if (hops >= 20) throw new TypeError("fetch: too many redirects");
      if (res.status === 303 || ((res.status === 301 || res.status === 302) && method === "POST")) {
        method = "GET"; body = new Uint8Array(0);
        headers = headers.filter(([k]) => !["content-type", "content-length"].includes(k));
      }
      const next = new URL(location, url);
      if (next.origin !== new URL(url).origin) headers = headers.filter(([k]) => k !== "authorization");
      url = next.href;
    }
  }
  mb.settle = (id, status, statusText, headers, body) => {
    const f = mb.fetches.get(id);
    if (!f) return;
    mb.fetches.delete(id);
    const bytes = typeof body === "string" ? mb.utf8Encode(body) : body;
    f.resolve(Response._from(status, statusText, headers, bytes, f.url));
  };
  mb.settleB64 = (id, status, statusText, headers, b64) => mb.settle(id, status, statusText, headers, mb.fromBase64(b64));
  mb.reject = (id, message) => {
    const f = mb.fetches.get(id);
    if (!f) return;
    mb.fetches.delete(id);
    f.reject(new TypeError(message));
  };
  define("fetch", fetch);
})();
