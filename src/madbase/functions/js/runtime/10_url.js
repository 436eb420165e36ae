// MadBase JS runtime, part 2: URL, URLSearchParams, URLPattern (WHATWG-shaped, for http(s)-like URLs).
"use strict";
(() => {
  const mb = __madbase, define = mb.define;
  const SPECIAL = { "http:": "80", "https:": "443", "ws:": "80", "wss:": "443", "ftp:": "21", "file:": "" };
  const HEX = "0123456789ABCDEF";

  const PLAIN = /^[A-Za-z0-9\-._~!$&'()*+,;=:@\/?%]*$/;
  function pctEncode(str, keep) {
    if (PLAIN.test(str) && (keep !== USER_KEEP || !/[\/?:@]/.test(str))) return str;  // the common case
    return pctEncodeAll(str, keep);
  }
  function pctEncodeAll(str, keep) {
    const bytes = mb.utf8Encode(str);
    let out = "";
    for (let i = 0; i < bytes.length; i++) {
      const b = bytes[i];
      const ch = String.fromCharCode(b);
      if (b < 0x80 && keep.test(ch)) out += ch;
      else out += "%" + HEX[b >> 4] + HEX[b & 15];
    }
    return out;
  }
  // characters left as they are in each component (the rest is percent-encoded, existing %XX kept)
  const PATH_KEEP = /[A-Za-z0-9\-._~!$&'()*+,;=:@\/%\[\]|^`{}\\]/;
  const QUERY_KEEP = /[A-Za-z0-9\-._~!$&'()*+,;=:@\/?%\[\]|^`{}\\]/;
  const FRAG_KEEP = /[A-Za-z0-9\-._~!$&'()*+,;=:@\/?%\[\]|^{}\\#]/;
  const USER_KEEP = /[A-Za-z0-9\-._~!$&'()*+,;=%]/;

  function formEncode(s) {
    s = String(s);
    return /^[A-Za-z0-9*\-._]*$/.test(s) ? s : pctEncodeAll(s, /[A-Za-z0-9*\-._ ]/).replace(/ /g, "+");
  }
  function formDecode(s) {
    const bytes = [];
    const str = s.replace(/\+/g, " ");
    for (let i = 0; i < str.length; i++) {
      const c = str[i];
      if (c === "%" && /^[0-9a-fA-F]{2}$/.test(str.substr(i + 1, 2))) { bytes.push(parseInt(str.substr(i + 1, 2), 16)); i += 2; }
      else for (const b of mb.utf8Encode(c === "%" ? "%" : str.codePointAt(i) > 0xffff ? str.substr(i++, 2) : c)) bytes.push(b);
    }
    return mb.utf8Decode(new Uint8Array(bytes));
  }
  mb.formEncode = formEncode;
  mb.formDecode = formDecode;

  class URLSearchParams {
    #list = [];
    #url = null;
    constructor(init = "") {
      if (init instanceof URLSearchParams) this.#list = init.#list.map(([k, v]) => [k, v]);
      else if (typeof init === "string") this.#parse(init);
      else if (init && typeof init === "object" && typeof init[Symbol.iterator] === "function") {
        for (const pair of init) {
          const p = [...pair];
          if (p.length !== 2) throw new TypeError("Each query pair must be an iterable [name, value] tuple");
          this.#list.push([String(p[0]), String(p[1])]);
        }
      } else if (init && typeof init === "object") {
        for (const k of Object.keys(init)) this.#list.push([k, String(init[k])]);
      } else if (init != null) this.#parse(String(init));
    }
    #parse(s) {
      this.#list = [];
      if (s.startsWith("?")) s = s.slice(1);
      for (const part of s.split("&")) {
        if (!part) continue;
        const eq = part.indexOf("=");
        const k = eq < 0 ? part : part.slice(0, eq), v = eq < 0 ? "" : part.slice(eq + 1);
        this.#list.push([formDecode(k), formDecode(v)]);
      }
    }
    static _attach(params, url, query) { params.#url = url; params.#parse(query); }
    #update() { if (this.#url) this.#url._setQuery(this.toString()); }
    get size() { return this.#list.length; }
    append(k, v) { this.#list.push([String(k), String(v)]); this.#update(); }
    delete(k, v) { k = String(k); this.#list = this.#list.filter(([a, b]) => !(a === k && (v === undefined || b === String(v)))); this.#update(); }
    get(k) { k = String(k); const e = this.#list.find(([a]) => a === k); return e ? e[1] : null; }
    getAll(k) { k = String(k); return this.#list.filter(([a]) => a === k).map(([, b]) => b); }
    has(k, v) { k = String(k); return this.#list.some(([a, b]) => a === k && (v === undefined || b === String(v))); }
    set(k, v) {
      k = String(k); v = String(v);
      const i = this.#list.findIndex(([a]) => a === k);
      if (i < 0) this.#list.push([k, v]);
      else { this.#list[i][1] = v; this.#list = this.#list.filter(([a], j) => a !== k || j === i); }
      this.#update();
    }
    sort() { this.#list.sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0)); this.#update(); }
    forEach(fn, self) { for (const [k, v] of this.#list) fn.call(self, v, k, this); }
    *entries() { for (const [k, v] of this.#list) yield [k, v]; }
    *keys() { for (const [k] of this.#list) yield k; }
    *values() { for (const [, v] of this.#list) yield v; }
    [Symbol.iterator]() { return this.entries(); }
    toString() { return this.#list.map(([k, v]) => `${formEncode(k)}=${formEncode(v)}`).join("&"); }
    get [Symbol.toStringTag]() { return "URLSearchParams"; }
  }

  function removeDots(path) {
    const out = [];
    const segs = path.split("/");
    for (let i = 0; i < segs.length; i++) {
      const s = segs[i];
      if (s === "..") { if (out.length > 1) out.pop(); if (i === segs.length - 1) out.push(""); }
      else if (s === ".") { if (i === segs.length - 1) out.push(""); }
      else out.push(s);
    }
    let r = out.join("/");
    if (!r.startsWith("/")) r = "/" + r;
    return r;
  }

  class URL {
    #protocol = ""; #username = ""; #password = ""; #hostname = ""; #port = ""; #pathname = ""; #query = ""; #hash = "";
    #opaque = false; #params = null;
    constructor(input, base) {
      input = String(input).trim().replace(/[\t\n\r]/g, "");
      let baseUrl = null;
      if (base !== undefined) baseUrl = base instanceof URL ? base : new URL(base);
      const m = /^([A-Za-z][A-Za-z0-9+.\-]*):(.*)$/.exec(input);
      if (m && !(baseUrl && SPECIAL[m[1].toLowerCase() + ":"] !== undefined && m[1].toLowerCase() + ":" === baseUrl.protocol && !/^[\/\\]/.test(m[2]))) {
        this.#protocol = m[1].toLowerCase() + ":";
        this.#parseRest(m[2]);
      } else if (baseUrl) {
        this.#protocol = baseUrl.protocol;
        const rest = m ? m[2] : input;
        if (/^[\/\\]{2}/.test(rest)) this.#parseRest(rest);
        else {
          this.#username = baseUrl.username; this.#password = baseUrl.password;
          this.#hostname = baseUrl.hostname; this.#port = baseUrl.port;
          let r = rest, frag = "", q = null;
          const h = r.indexOf("#");
          if (h >= 0) { frag = r.slice(h + 1); r = r.slice(0, h); }
          const qi = r.indexOf("?");
          if (qi >= 0) { q = r.slice(qi + 1); r = r.slice(0, qi); }
          if (r === "") { this.#pathname = baseUrl.pathname; this.#query = q === null ? baseUrl.search.slice(1) : pctEncode(q, QUERY_KEEP); }
          else {
            r = r.replace(/\\/g, "/");
            const path = r.startsWith("/") ? r : baseUrl.pathname.replace(/[^\/]*$/, "") + r;
            this.#pathname = pctEncode(removeDots(path), PATH_KEEP);
            this.#query = q === null ? "" : pctEncode(q, QUERY_KEEP);
          }
          this.#hash = pctEncode(frag, FRAG_KEEP);
          if (h < 0) this.#hash = "";
        }
      } else throw new TypeError(`Invalid URL: '${input}'`);
    }
    #parseRest(rest) {
      const special = SPECIAL[this.#protocol] !== undefined;
      let r = rest, frag = null, q = null;
      const h = r.indexOf("#");
      if (h >= 0) { frag = r.slice(h + 1); r = r.slice(0, h); }
      const qi = r.indexOf("?");
      if (qi >= 0) { q = r.slice(qi + 1); r = r.slice(0, qi); }
      if (special) r = r.replace(/\\/g, "/");
      if (r.startsWith("//")) {
        r = r.slice(2);
        const slash = r.indexOf("/");
        let auth = slash < 0 ? r : r.slice(0, slash);
        r = slash < 0 ? "" : r.slice(slash);
        const at = auth.lastIndexOf("@");
        if (at >= 0) {
          const cred = auth.slice(0, at); auth = auth.slice(at + 1);
          const c = cred.indexOf(":");
          this.#username = pctEncode(c < 0 ? cred : cred.slice(0, c), USER_KEEP);
          this.#password = c < 0 ? "" : pctEncode(cred.slice(c + 1), USER_KEEP);
        }
        const pm = /^(\[[^\]]*\]|[^:]*)(?::(\d*))?$/.exec(auth);
        if (!pm) throw new TypeError(`Invalid URL: '${this.#protocol}${rest}'`);
        let host = pm[1];
        if (special) {
          host = host.toLowerCase();
          if (/[\s<>^|%]/.test(host) || (this.#protocol !== "file:" && !host)) throw new TypeError(`Invalid URL: '${this.#protocol}${rest}'`);
        }
        this.#hostname = host;
        const port = pm[2] || "";
        if (port && Number(port) > 65535) throw new TypeError(`Invalid URL: '${this.#protocol}${rest}'`);
        this.#port = port === "" || SPECIAL[this.#protocol] === String(Number(port)) ? "" : String(Number(port));
        this.#pathname = special || r ? pctEncode(removeDots(r || "/"), PATH_KEEP) : "";
      } else if (special) {
        if (this.#protocol === "file:") { this.#pathname = pctEncode(removeDots(r), PATH_KEEP); }
        else return this.#parseRest("//" + r.replace(/^\/*/, "") + (q !== null ? "?" + q : "") + (frag !== null ? "#" + frag : ""));
      } else {
        this.#opaque = !r.startsWith("/");
        this.#pathname = this.#opaque ? pctEncode(r, /[\x20-\x7e]/) : pctEncode(r, PATH_KEEP);
      }
      this.#query = q === null ? "" : pctEncode(q, QUERY_KEEP);
      this.#hash = frag === null ? "" : pctEncode(frag, FRAG_KEEP);
    }
    static canParse(u, b) { try { new URL(u, b); return true; } catch { return false; } }
    static parse(u, b) { try { return new URL(u, b); } catch { return null; } }
    _setQuery(q) { this.#query = q; }
    get protocol() { return this.#protocol; }
    set protocol(v) { v = String(v).replace(/:.*$/, "").toLowerCase(); if (/^[a-z][a-z0-9+.\-]*$/.test(v)) { this.#protocol = v + ":"; if (SPECIAL[this.#protocol] === this.#port) this.#port = ""; } }
    get username() { return this.#username; }
    set username(v) { this.#username = pctEncode(String(v), USER_KEEP); }
    get password() { return this.#password; }
    set password(v) { this.#password = pctEncode(String(v), USER_KEEP); }
    get hostname() { return this.#hostname; }
    set hostname(v) { this.#hostname = String(v).toLowerCase(); }
    get port() { return this.#port; }
    set port(v) { v = String(v); this.#port = v === "" || SPECIAL[this.#protocol] === v ? "" : String(parseInt(v, 10)); }
    get host() { return this.#hostname + (this.#port ? ":" + this.#port : ""); }
    set host(v) { const [h, p] = String(v).split(":"); this.hostname = h; if (p !== undefined) this.port = p; }
    get origin() { return SPECIAL[this.#protocol] !== undefined && this.#protocol !== "file:" ? `${this.#protocol}//${this.host}` : "null"; }
    get pathname() { return this.#pathname; }
    set pathname(v) { if (!this.#opaque) { v = String(v); this.#pathname = pctEncode(removeDots(v.startsWith("/") ? v : "/" + v), PATH_KEEP); } }
    get search() { return this.#query ? "?" + this.#query : ""; }
    set search(v) { v = String(v); if (v.startsWith("?")) v = v.slice(1); this.#query = pctEncode(v, QUERY_KEEP); if (this.#params) URLSearchParams._attach(this.#params, this, this.#query); }
    get searchParams() {
      if (!this.#params) { this.#params = new URLSearchParams(); URLSearchParams._attach(this.#params, this, this.#query); }
      return this.#params;
    }
    get hash() { return this.#hash ? "#" + this.#hash : ""; }
    set hash(v) { v = String(v); if (v.startsWith("#")) v = v.slice(1); this.#hash = pctEncode(v, FRAG_KEEP); }
    get href() {
      const auth = this.#username || this.#password ? this.#username + (this.#password ? ":" + this.#password : "") + "@" : "";
      const hasHost = !this.#opaque && (this.#hostname !== "" || SPECIAL[this.#protocol] !== undefined);
      return this.#protocol + (hasHost ? "//" + auth + this.host : "") + this.#pathname + this.search + this.hash;
    }
    set href(v) { const u = new URL(v); Object.assign(this, {}); this.#protocol = u.protocol; this.#username = u.username; this.#password = u.password; this.#hostname = u.hostname; this.#port = u.port; this.#pathname = u.pathname; this.search = u.search; this.#hash = u.hash.slice(1); }
    toString() { return this.href; }
    toJSON() { return this.href; }
    get [Symbol.toStringTag]() { return "URL"; }
  }

  // URLPattern: the pathname/hostname/protocol/search/hash components, each a path-to-regexp style pattern
  // (:name, :name?, :name*, :name+, *, {group}?, (regex)); "basic" as the brief says, enough for routers.
  function compilePart(pattern, sep) {
    if (pattern === undefined || pattern === "*") return { re: /^([\s\S]*)$/, names: ["0"] };
    const names = [];
    let re = "", i = 0, anon = 0;
    const seg = sep ? `[^${sep}]+?` : "[\\s\\S]+?";
    while (i < pattern.length) {
      const c = pattern[i];
      if (c === ":") {
        const m = /^:([A-Za-z_$][\w$]*)(\([^)]*\))?([?*+])?/.exec(pattern.slice(i));
        names.push(m[1]);
        const inner = m[2] ? m[2].slice(1, -1) : seg;
        const mod = m[3] || "";
        const prefix = sep && re.endsWith(sep === "/" ? "\\/" : "\\.") ? re.slice(0, -2) : null;
        if (prefix !== null && (mod === "?" || mod === "*")) {
          re = prefix + (mod === "?" ? `(?:\\${sep}(${inner}))?` : `(?:\\${sep}((?:${inner})(?:\\${sep}(?:${inner}))*))?`);
        } else re += mod === "+" || mod === "*" ? `((?:${inner})(?:\\${sep || "/"}(?:${inner}))*)${mod === "*" ? "?" : ""}` : `(${inner})${mod}`;
        i += m[0].length;
      } else if (c === "*") { names.push(String(anon++)); re += "([\\s\\S]*)"; i++; }
      else if (c === "(") { const j = pattern.indexOf(")", i); names.push(String(anon++)); re += `(${pattern.slice(i + 1, j)})`; i = j + 1; }
      else if (c === "{") {
        const j = pattern.indexOf("}", i);
        const sub = compilePart(pattern.slice(i + 1, j), sep);
        names.push(...sub.names);
        const mod = /[?*+]/.test(pattern[j + 1] || "") ? pattern[j + 1] : "";
        re += `(?:${sub.re.source.slice(1, -1)})${mod}`;
        i = j + 1 + (mod ? 1 : 0);
      } else if (c === "\\") { re += "\\" + pattern[i + 1]; i += 2; }
      else { re += c.replace(/[.*+?^${}()|[\]\\\/]/g, "\\$&"); i++; }
    }
    return { re: new RegExp(`^${re}$`), names };
  }
  const PARTS = ["protocol", "username", "password", "hostname", "port", "pathname", "search", "hash"];
  class URLPattern {
    #parts = {};
    #source = {};
    constructor(input = {}, baseURL) {
      if (typeof input === "string") {
        // a full pattern string ("https://example.com/books/:id") or a pathname relative to baseURL
        if (input.startsWith("/") && baseURL === undefined) input = { pathname: input };
        else {
          const m = /^([a-z][a-z0-9+.\-*]*):\/\/([^\/?#]*)([^?#]*)(?:\?([^#]*))?(?:#(.*))?$/i.exec(input);
          if (m) input = { protocol: m[1], hostname: m[2].replace(/:\d+$/, ""), port: (/:(\d+)$/.exec(m[2]) || [])[1], pathname: m[3] || "/", search: m[4], hash: m[5] };
          else { const b = new URL(baseURL); input = { protocol: b.protocol.slice(0, -1), hostname: b.hostname, port: b.port, pathname: input }; }
        }
      }
      for (const p of PARTS) {
        const v = input[p];
        this.#source[p] = v === undefined ? "*" : String(v);
        this.#parts[p] = compilePart(v === undefined ? undefined : String(v), p === "pathname" ? "/" : p === "hostname" ? "." : "");
      }
    }
    get protocol() { return this.#source.protocol; }
    get hostname() { return this.#source.hostname; }
    get port() { return this.#source.port; }
    get pathname() { return this.#source.pathname; }
    get search() { return this.#source.search; }
    get hash() { return this.#source.hash; }
    get username() { return this.#source.username; }
    get password() { return this.#source.password; }
    test(input, base) { return this.exec(input, base) !== null; }
    exec(input, base) {
      let values;
      if (typeof input === "string" || input instanceof URL) {
        let u;
        try { u = new URL(String(input), base); } catch { return null; }
        values = { protocol: u.protocol.slice(0, -1), username: u.username, password: u.password, hostname: u.hostname, port: u.port, pathname: u.pathname, search: u.search.slice(1), hash: u.hash.slice(1) };
      } else values = input;
      const out = { inputs: [input] };
      for (const p of PARTS) {
        const v = values[p] === undefined ? "" : String(values[p]);
        const { re, names } = this.#parts[p];
        const m = re.exec(v);
        if (!m) return null;
        const groups = {};
        names.forEach((n, i) => { groups[n] = m[i + 1]; });
        out[p] = { input: v, groups };
      }
      return out;
    }
  }
  define("URL", URL);
  define("URLSearchParams", URLSearchParams);
  define("URLPattern", URLPattern);
})();
