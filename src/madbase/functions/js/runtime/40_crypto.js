// MadBase JS runtime, part 5: crypto.getRandomValues/randomUUID (a SHA-256 counter DRBG seeded by the host
// with fresh entropy for every request) and crypto.subtle digest (SHA-1/256/384/512) and HMAC.
"use strict";
(() => {
  const mb = __madbase, define = mb.define;

  mb.fromBase64 = (b64) => mb.binToBytes(atob(b64));

  const K256 = new Uint32Array([
    0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5, 0xd807aa98, 0x12835b01,
    0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174, 0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc,
    0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da, 0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147,
    0x06ca6351, 0x14292967, 0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85,
    0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070, 0x19a4c116, 0x1e376c08,
    0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3, 0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208,
    0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2]);

  function pad(bytes, blockLen, lenBytes) {
    const total = Math.ceil((bytes.length + 1 + lenBytes) / blockLen) * blockLen;
    const out = new Uint8Array(total);
    out.set(bytes); out[bytes.length] = 0x80;
    const bits = bytes.length * 8, dv = new DataView(out.buffer);
    dv.setUint32(total - 4, bits >>> 0); dv.setUint32(total - 8, Math.floor(bits / 0x100000000));
    return dv;
  }
  function sha256(bytes) {
    const dv = pad(bytes, 64, 8), H = new Uint32Array([0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a, 0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19]);
    const W = new Uint32Array(64);
    for (let off = 0; off < dv.byteLength; off += 64) {
      for (let i = 0; i < 16; i++) W[i] = dv.getUint32(off + i * 4);
      for (let i = 16; i < 64; i++) {
        const a = W[i - 15], b = W[i - 2];
        const s0 = ((a >>> 7) | (a << 25)) ^ ((a >>> 18) | (a << 14)) ^ (a >>> 3);
        const s1 = ((b >>> 17) | (b << 15)) ^ ((b >>> 19) | (b << 13)) ^ (b >>> 10);
        W[i] = (W[i - 16] + s0 + W[i - 7] + s1) | 0;
      }
      let [a, b, c, d, e, f, g, h] = H;
      for (let i = 0; i < 64; i++) {
        const S1 = ((e >>> 6) | (e << 26)) ^ ((e >>> 11) | (e << 21)) ^ ((e >>> 25) | (e << 7));
        const t1 = (h + S1 + ((e & f) ^ (~e & g)) + K256[i] + W[i]) | 0;
        const S0 = ((a >>> 2) | (a << 30)) ^ ((a >>> 13) | (a << 19)) ^ ((a >>> 22) | (a << 10));
        const t2 = (S0 + ((a & b) ^ (a & c) ^ (b & c))) | 0;
        h = g; g = f; f = e; e = (d + t1) | 0; d = c; c = b; b = a; a = (t1 + t2) | 0;
      }
      H[0] += a; H[1] += b; H[2] += c; H[3] += d; H[4] += e; H[5] += f; H[6] += g; H[7] += h;
    }
    const out = new DataView(new ArrayBuffer(32));
    H.forEach((v, i) => out.setUint32(i * 4, v));
    return new Uint8Array(out.buffer);
  }
  function sha1(bytes) {
    const dv = pad(bytes, 64, 8), H = new Uint32Array([0x67452301, 0xefcdab89, 0x98badcfe, 0x10325476, 0xc3d2e1f0]);
    const W = new Uint32Array(80);
    for (let off = 0; off < dv.byteLength; off += 64) {
      for (let i = 0; i < 16; i++) W[i] = dv.getUint32(off + i * 4);
      for (let i = 16; i < 80; i++) { const x = W[i - 3] ^ W[i - 8] ^ W[i - 14] ^ W[i - 16]; W[i] = (x << 1) | (x >>> 31); }
      let [a, b, c, d, e] = H;
      for (let i = 0; i < 80; i++) {
        const f = i < 20 ? (b & c) | (~b & d) : i < 40 ? b ^ c ^ d : i < 60 ? (b & c) | (b & d) | (c & d) : b ^ c ^ d;
        const k = i < 20 ? 0x5a827999 : i < 40 ? 0x6ed9eba1 : i < 60 ? 0x8f1bbcdc : 0xca62c1d6;
        const t = (((a << 5) | (a >>> 27)) + f + e + k + W[i]) | 0;
        e = d; d = c; c = (b << 30) | (b >>> 2); b = a; a = t;
      }
      H[0] += a; H[1] += b; H[2] += c; H[3] += d; H[4] += e;
    }
    const out = new DataView(new ArrayBuffer(20));
    H.forEach((v, i) => out.setUint32(i * 4, v));
    return new Uint8Array(out.buffer);
  }
  // SHA-512/384 with BigInt words: slower, but short inputs (tokens, signatures) are what functions hash.
  const K512 = [
    "428a2f98d728ae22", "7137449123ef65cd", "b5c0fbcfec4d3b2f", "e9b5dba58189dbbc", "3956c25bf348b538", "59f111f1b605d019", "923f82a4af194f9b", "ab1c5ed5da6d8118",
    "d807aa98a3030242", "12835b0145706fbe", "243185be4ee4b28c", "550c7dc3d5ffb4e2", "72be5d74f27b896f", "80deb1fe3b1696b1", "9bdc06a725c71235", "c19bf174cf692694",
    "e49b69c19ef14ad2", "efbe4786384f25e3", "0fc19dc68b8cd5b5", "240ca1cc77ac9c65", "2de92c6f592b0275", "4a7484aa6ea6e483", "5cb0a9dcbd41fbd4", "76f988da831153b5",
    "983e5152ee66dfab", "a831c66d2db43210", "b00327c898fb213f", "bf597fc7beef0ee4", "c6e00bf33da88fc2", "d5a79147930aa725", "06ca6351e003826f", "142929670a0e6e70",
    "27b70a8546d22ffc", "2e1b21385c26c926", "4d2c6dfc5ac42aed", "53380d139d95b3df", "650a73548baf63de", "766a0abb3c77b2a8", "81c2c92e47edaee6", "92722c851482353b",
    "a2bfe8a14cf10364", "a81a664bbc423001", "c24b8b70d0f89791", "c76c51a30654be30", "d192e819d6ef5218", "d69906245565a910", "f40e35855771202a", "106aa07032bbd1b8",
    "19a4c116b8d2d0c8", "1e376c085141ab53", "2748774cdf8eeb99", "34b0bcb5e19b48a8", "391c0cb3c5c95a63", "4ed8aa4ae3418acb", "5b9cca4f7763e373", "682e6ff3d6b2b8a3",
    "748f82ee5defb2fc", "78a5636f43172f60", "84c87814a1f0ab72", "8cc702081a6439ec", "90befffa23631e28", "a4506cebde82bde9", "bef9a3f7b2c67915", "c67178f2e372532b",
    "ca273eceea26619c", "d186b8c721c0c207", "eada7dd6cde0eb1e", "f57d4f7fee6ed178", "06f067aa72176fba", "0a637dc5a2c898a6", "113f9804bef90dae", "1b710b35131c471b",
    "28db77f523047d84", "32caab7b40c72493", "3c9ebe0a15c9bebc", "431d67c49c100d4c", "4cc5d4becb3e42b6", "597f299cfc657e2a", "5fcb6fab3ad6faec", "6c44198c4a475817"].map((h) => BigInt("0x" + h));
  const M64 = (1n << 64n) - 1n;
  const rotr = (x, n) => ((x >> n) | (x << (64n - n))) & M64;
  function sha512(bytes, is384) {
    const dv = pad(bytes, 128, 16);
    const H = (is384
      ? ["cbbb9d5dc1059ed8", "629a292a367cd507", "9159015a3070dd17", "152fecd8f70e5939", "67332667ffc00b31", "8eb44a8768581511", "db0c2e0d64f98fa7", "47b5481dbefa4fa4"]
      : ["6a09e667f3bcc908", "bb67ae8584caa73b", "3c6ef372fe94f82b", "a54ff53a5f1d36f1", "510e527fade682d1", "9b05688c2b3e6c1f", "1f83d9abfb41bd6b", "5be0cd19137e2179"]).map((h) => BigInt("0x" + h));
    const W = new Array(80);
    for (let off = 0; off < dv.byteLength; off += 128) {
      for (let i = 0; i < 16; i++) W[i] = dv.getBigUint64(off + i * 8);
      for (let i = 16; i < 80; i++) {
        const s0 = rotr(W[i - 15], 1n) ^ rotr(W[i - 15], 8n) ^ (W[i - 15] >> 7n);
        const s1 = rotr(W[i - 2], 19n) ^ rotr(W[i - 2], 61n) ^ (W[i - 2] >> 6n);
        W[i] = (W[i - 16] + s0 + W[i - 7] + s1) & M64;
      }
      let [a, b, c, d, e, f, g, h] = H;
      for (let i = 0; i < 80; i++) {
        const S1 = rotr(e, 14n) ^ rotr(e, 18n) ^ rotr(e, 41n);
        const t1 = (h + S1 + ((e & f) ^ (~e & M64 & g)) + K512[i] + W[i]) & M64;
        const S0 = rotr(a, 28n) ^ rotr(a, 34n) ^ rotr(a, 39n);
        const t2 = (S0 + ((a & b) ^ (a & c) ^ (b & c))) & M64;
        h = g; g = f; f = e; e = (d + t1) & M64; d = c; c = b; b = a; a = (t1 + t2) & M64;
      }
      H[0] = (H[0] + a) & M64; H[1] = (H[1] + b) & M64; H[2] = (H[2] + c) & M64; H[3] = (H[3] + d) & M64;
      H[4] = (H[4] + e) & M64; H[5] = (H[5] + f) & M64; H[6] = (H[6] + g) & M64; H[7] = (H[7] + h) & M64;
    }
    const out = new DataView(new ArrayBuffer(64));
    H.forEach((v, i) => out.setBigUint64(i * 8, v));
    return new Uint8Array(out.buffer, 0, is384 ? 48 : 64).slice();
  }
  const DIGESTS = {
    "SHA-1": { fn: sha1, block: 64 }, "SHA-256": { fn: sha256, block: 64 },
    "SHA-384": { fn: (b) => sha512(b, true), block: 128 }, "SHA-512": { fn: (b) => sha512(b, false), block: 128 },
  };
  function algo(a) {
    const name = (typeof a === "string" ? a : a && a.name || "").toUpperCase();
    return name;
  }
  function digestOf(hashName) {
    const d = DIGESTS[algo(hashName)];
    if (!d) throw new DOMException(`Unrecognized algorithm name: ${algo(hashName)}`, "NotSupportedError");
    return d;
  }
  function hmac(hashName, key, data) {
    const d = digestOf(hashName);
    let k = key.length > d.block ? d.fn(key) : key;
    const kp = new Uint8Array(d.block); kp.set(k);
    const ipad = new Uint8Array(d.block + data.length), opad = new Uint8Array(d.block);
    for (let i = 0; i < d.block; i++) { ipad[i] = kp[i] ^ 0x36; opad[i] = kp[i] ^ 0x5c; }
    ipad.set(data, d.block);
    const inner = d.fn(ipad);
    return d.fn(mb.concatBytes([opad, inner]));
  }
  mb.sha256 = sha256;

  // random: SHA-256(seed || counter) blocks; the seed is replaced for each request from host entropy
  let seed = new Uint8Array(32), counter = 0, pool = new Uint8Array(0), poolAt = 0;
  // the seed arrives as hex with each request; it is parsed on first use (most requests never need it)
  let seedHex = null;
  mb.reseed = (hex) => { seedHex = hex; counter = 0; pool = new Uint8Array(0); poolAt = 0; xs = null; };
  function takeSeed() {
    if (seedHex === null) return;
    seed = new Uint8Array(seedHex.length / 2);
    for (let i = 0; i < seed.length; i++) seed[i] = parseInt(seedHex.substr(i * 2, 2), 16);
    seedHex = null;
  }
  function randomBytes(n) {
    takeSeed();
    const out = new Uint8Array(n);
    for (let i = 0; i < n; i++) {
      if (poolAt >= pool.length) {
        const block = new Uint8Array(seed.length + 8); block.set(seed);
        new DataView(block.buffer).setFloat64(seed.length, counter++);
        pool = sha256(block); poolAt = 0;
      }
      out[i] = pool[poolAt++];
    }
    return out;
  }
  // Math.random needs no cryptographic strength: xorshift128+ seeded from the DRBG once per request
  let xs = null;
  Math.random = () => {
    if (xs === null) xs = new Uint32Array(randomBytes(16).buffer);
    let s1h = xs[0], s1l = xs[1];
    const s0h = xs[2], s0l = xs[3];
    xs[0] = s0h; xs[1] = s0l;
    s1h ^= (s1h << 23) | (s1l >>> 9); s1l ^= s1l << 23;
    s1l ^= (s1l >>> 17) | (s1h << 15); s1h ^= s1h >>> 17;
    s1h ^= s0h; s1l ^= s0l;
    s1l ^= (s0l >>> 26) | (s0h << 6); s1h ^= s0h >>> 26;
    xs[2] = s1h; xs[3] = s1l;
    return (((xs[2] + s0h) >>> 0) * 2097152 + (((xs[3] + s0l) >>> 0) >>> 11)) / 9007199254740992 % 1;
  };

  class CryptoKey {
    constructor(key, algorithm, extractable, usages) {
      Object.defineProperty(this, "_raw", { value: key, enumerable: false });
      this.type = "secret"; this.algorithm = algorithm; this.extractable = extractable; this.usages = usages;
    }
  }
  const unsupported = (what) => Promise.reject(new DOMException(`${what} is not supported by this runtime`, "NotSupportedError"));
  const subtle = {
    async digest(alg, data) { return digestOf(alg).fn(mb.toBytes(data)).buffer; },
    async importKey(format, keyData, alg, extractable, usages) {
      if (algo(alg) !== "HMAC") return unsupported(`importKey(${algo(alg)})`);
      let raw;
      if (format === "raw") raw = mb.toBytes(keyData).slice();
      else if (format === "jwk") raw = mb.fromBase64(keyData.k.replace(/-/g, "+").replace(/_/g, "/").padEnd(Math.ceil(keyData.k.length / 4) * 4, "="));
      else return unsupported(`importKey format ${format}`);
      const hash = { name: algo(alg.hash) };
      digestOf(hash);
      return new CryptoKey(raw, { name: "HMAC", hash, length: raw.length * 8 }, !!extractable, usages);
    },
    async generateKey(alg, extractable, usages) {
      if (algo(alg) !== "HMAC") return unsupported(`generateKey(${algo(alg)})`);
      const hash = { name: algo(alg.hash) };
      const raw = randomBytes((alg.length || digestOf(hash).block * 8) / 8);
      return new CryptoKey(raw, { name: "HMAC", hash, length: raw.length * 8 }, !!extractable, usages);
    },
    async exportKey(format, key) {
      if (!key.extractable) throw new DOMException("key is not extractable", "InvalidAccessError");
      if (format === "raw") return key._raw.slice().buffer;
      return unsupported(`exportKey format ${format}`);
    },
    async sign(alg, key, data) {
      if (algo(alg) !== "HMAC" || !(key instanceof CryptoKey)) return unsupported(`sign(${algo(alg)})`);
      return hmac(key.algorithm.hash, key._raw, mb.toBytes(data)).buffer;
    },
    async verify(alg, key, signature, data) {
      if (algo(alg) !== "HMAC" || !(key instanceof CryptoKey)) return unsupported(`verify(${algo(alg)})`);
      const mac = hmac(key.algorithm.hash, key._raw, mb.toBytes(data)), sig = mb.toBytes(signature);
      if (mac.length !== sig.length) return false;
      let diff = 0;
      for (let i = 0; i < mac.length; i++) diff |= mac[i] ^ sig[i];
      return diff === 0;
    },
    encrypt: () => unsupported("encrypt"), decrypt: () => unsupported("decrypt"),
    deriveBits: () => unsupported("deriveBits"), deriveKey: () => unsupported("deriveKey"),
    wrapKey: () => unsupported("wrapKey"), unwrapKey: () => unsupported("unwrapKey"),
  };
  const crypto = {
    subtle,
    getRandomValues(arr) {
      if (!ArrayBuffer.isView(arr) || arr instanceof Float32Array || arr instanceof Float64Array) throw new TypeError("Argument must be an integer typed array");
      if (arr.byteLength > 65536) throw new DOMException("The ArrayBufferView's byte length exceeds 65536", "QuotaExceededError");
      new Uint8Array(arr.buffer, arr.byteOffset, arr.byteLength).set(randomBytes(arr.byteLength));
      return arr;
    },
    randomUUID() {
      const b = randomBytes(16);
      b[6] = (b[6] & 0x0f) | 0x40; b[8] = (b[8] & 0x3f) | 0x80;
      const h = [...b].map((x) => x.toString(16).padStart(2, "0")).join("");
      return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
    },
  };
  define("crypto", crypto);
  define("CryptoKey", CryptoKey);
})();
