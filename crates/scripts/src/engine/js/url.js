// Prelude, part 1: text encoding, base64 and URLs.
// Owns: TextEncoder, TextDecoder, atob, btoa, URL, URLSearchParams, and the
// byte helpers the other parts use (internals.toBytes, utf8Encode/Decode).
// Parsing is done by Rust natives (the `url` crate for WHATWG URLs).
(function (native, internals) {
  "use strict";

  const define = (name, value) =>
    Object.defineProperty(globalThis, name, { value, writable: true, configurable: true, enumerable: false });

  const wellFormed = (s) => (typeof s.toWellFormed === "function" ? s.toWellFormed() : s);
  const utf8Encode = (s) => native.utf8Encode(wellFormed(String(s)));
  const utf8Decode = (bytes, fatal) => native.utf8Decode(bytes, !!fatal);

  // Any binary-ish value as a Uint8Array view (no copy); strings as UTF-8.
  function toBytes(data, what) {
    if (typeof data === "string") return utf8Encode(data);
    if (data instanceof Uint8Array) return data;
    if (data instanceof ArrayBuffer) return new Uint8Array(data);
    if (ArrayBuffer.isView(data)) return new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
    throw new TypeError(`${what} must be a string, an ArrayBuffer or a typed array`);
  }
  internals.toBytes = toBytes;
  internals.utf8Encode = utf8Encode;
  internals.utf8Decode = utf8Decode;
  internals.wellFormed = wellFormed;
  internals.define = define;

  class TextEncoder {
    get encoding() { return "utf-8"; }
    encode(input = "") { return utf8Encode(input); }
    encodeInto(source, destination) {
      const bytes = utf8Encode(source);
      // Only whole characters: back off to a UTF-8 boundary.
      let written = Math.min(bytes.length, destination.length);
      while (written > 0 && written < bytes.length && (bytes[written] & 0xc0) === 0x80) written--;
      destination.set(bytes.subarray(0, written));
      const read = utf8Decode(bytes.subarray(0, written), false).length;
      return { read, written };
    }
  }

  class TextDecoder {
    #fatal;
    #ignoreBOM;
    #pending = new Uint8Array(0);
    #started = false;
    constructor(label = "utf-8", options = {}) {
      const l = String(label).trim().toLowerCase();
      if (l !== "utf-8" && l !== "utf8" && l !== "unicode-1-1-utf-8") {
        throw new RangeError(`TextDecoder: only utf-8 is supported, not "${label}"`);
      }
      this.#fatal = !!options.fatal;
      this.#ignoreBOM = !!options.ignoreBOM;
    }
    get encoding() { return "utf-8"; }
    get fatal() { return this.#fatal; }
    get ignoreBOM() { return this.#ignoreBOM; }
    // With { stream: true }, an incomplete UTF-8 sequence at the end waits
    // for the next call (TextDecoderStream decodes chunk by chunk).
    decode(input, options = {}) {
      let bytes = input === undefined || input === null ? new Uint8Array(0) : toBytes(input, "TextDecoder.decode input");
      if (this.#pending.length) {
        const joined = new Uint8Array(this.#pending.length + bytes.length);
        joined.set(this.#pending);
        joined.set(bytes, this.#pending.length);
        bytes = joined;
        this.#pending = new Uint8Array(0);
      }
      const stream = !!(options && options.stream);
      if (stream) {
        let cut = bytes.length;
        for (let back = 1; back <= Math.min(3, bytes.length); back++) {
          const b = bytes[bytes.length - back];
          if ((b & 0xc0) === 0x80) continue;
          const need = b >= 0xf0 ? 4 : b >= 0xe0 ? 3 : b >= 0xc0 ? 2 : 1;
          if (need > back) cut = bytes.length - back;
          break;
        }
        this.#pending = bytes.slice(cut);
        bytes = bytes.subarray(0, cut);
      }
      if (!this.#started && !this.#ignoreBOM && bytes.length >= 3 && bytes[0] === 0xef && bytes[1] === 0xbb && bytes[2] === 0xbf) {
        bytes = bytes.subarray(3);
      }
      if (bytes.length || !stream) this.#started = stream;
      return utf8Decode(bytes, this.#fatal);
    }
  }

  define("TextEncoder", TextEncoder);
  define("TextDecoder", TextDecoder);
  define("atob", function atob(data) {
    if (arguments.length === 0) throw new TypeError("atob needs 1 argument");
    return native.atob(String(data));
  });
  define("btoa", function btoa(data) {
    if (arguments.length === 0) throw new TypeError("btoa needs 1 argument");
    return native.btoa(String(data));
  });

  // --- application/x-www-form-urlencoded

  function percentDecode(s) {
    if (!s.includes("%")) return s;
    const bytes = utf8Encode(s);
    const out = new Uint8Array(bytes.length);
    const hex = (b) => (b >= 0x30 && b <= 0x39) || (b >= 0x41 && b <= 0x46) || (b >= 0x61 && b <= 0x66);
    let j = 0;
    for (let i = 0; i < bytes.length; i++) {
      const b = bytes[i];
      if (b === 0x25 && i + 2 < bytes.length && hex(bytes[i + 1]) && hex(bytes[i + 2])) {
        out[j++] = parseInt(String.fromCharCode(bytes[i + 1], bytes[i + 2]), 16);
        i += 2;
      } else {
        out[j++] = b;
      }
    }
    return utf8Decode(out.subarray(0, j), false);
  }

  function parseForm(input) {
    const list = [];
    for (const part of input.split("&")) {
      if (part === "") continue;
      const eq = part.indexOf("=");
      const name = eq < 0 ? part : part.slice(0, eq);
      const value = eq < 0 ? "" : part.slice(eq + 1);
      list.push([percentDecode(name.replace(/\+/g, " ")), percentDecode(value.replace(/\+/g, " "))]);
    }
    return list;
  }

  const formEncode = (s) =>
    encodeURIComponent(wellFormed(String(s)))
      .replace(/[!'()~]/g, (c) => "%" + c.charCodeAt(0).toString(16).toUpperCase())
      .replace(/%20/g, "+");

  let paramsList; // (params) => its list, for URL
  let paramsReset; // (params, search) => void, for URL

  class URLSearchParams {
    #list = [];
    #url = null;
    constructor(init = "") {
      if (init instanceof URLSearchParams) {
        this.#list = init.#list.map(([k, v]) => [k, v]);
      } else if (typeof init === "object" && init !== null) {
        if (typeof init[Symbol.iterator] === "function") {
          for (const pair of init) {
            const p = [...pair];
            if (p.length !== 2) throw new TypeError("URLSearchParams: each pair needs a name and a value");
            this.#list.push([wellFormed(String(p[0])), wellFormed(String(p[1]))]);
          }
        } else {
          for (const key of Object.keys(init)) this.#list.push([wellFormed(key), wellFormed(String(init[key]))]);
        }
      } else {
        const s = String(init);
        this.#list = parseForm(s.startsWith("?") ? s.slice(1) : s);
      }
    }
    static {
      paramsList = (p) => p.#list;
      paramsReset = (p, search, url) => {
        p.#list = parseForm(search.startsWith("?") ? search.slice(1) : search);
        p.#url = url;
      };
    }
    #update() {
      if (this.#url) this.#url.search = this.toString();
    }
    get size() { return this.#list.length; }
    append(name, value) { this.#list.push([wellFormed(String(name)), wellFormed(String(value))]); this.#update(); }
    delete(name, value) {
      const n = String(name);
      this.#list = this.#list.filter(([k, v]) => k !== n || (value !== undefined && v !== String(value)));
      this.#update();
    }
    get(name) {
      const n = String(name);
      const found = this.#list.find(([k]) => k === n);
      return found ? found[1] : null;
    }
    getAll(name) { const n = String(name); return this.#list.filter(([k]) => k === n).map(([, v]) => v); }
    has(name, value) {
      const n = String(name);
      return this.#list.some(([k, v]) => k === n && (value === undefined || v === String(value)));
    }
    set(name, value) {
      const n = wellFormed(String(name));
      const v = wellFormed(String(value));
      const i = this.#list.findIndex(([k]) => k === n);
      if (i < 0) this.#list.push([n, v]);
      else {
        this.#list[i] = [n, v];
        this.#list = this.#list.filter(([k], j) => j <= i || k !== n);
      }
      this.#update();
    }
    sort() {
      this.#list = this.#list
        .map((e, i) => [e, i])
        .sort((a, b) => (a[0][0] < b[0][0] ? -1 : a[0][0] > b[0][0] ? 1 : a[1] - b[1]))
        .map(([e]) => e);
      this.#update();
    }
    forEach(callback, thisArg) { for (const [k, v] of this.#list) callback.call(thisArg, v, k, this); }
    *entries() { for (const [k, v] of this.#list) yield [k, v]; }
    *keys() { for (const [k] of this.#list) yield k; }
    *values() { for (const [, v] of this.#list) yield v; }
    [Symbol.iterator]() { return this.entries(); }
    toString() { return this.#list.map(([k, v]) => `${formEncode(k)}=${formEncode(v)}`).join("&"); }
    get [Symbol.toStringTag]() { return "URLSearchParams"; }
  }

  // --- URL: components come from the `url` crate via native.urlParse / urlSet.

  const FIELDS = ["href", "origin", "protocol", "username", "password", "host", "hostname", "port", "pathname", "search", "hash"];

  class URL {
    #parts;
    #params = null;
    constructor(url, base) {
      if (arguments.length === 0) throw new TypeError("URL needs 1 argument");
      const b = base === undefined ? undefined : base instanceof URL ? base.href : String(base);
      this.#parts = native.urlParse(wellFormed(String(url instanceof URL ? url.href : url)), b);
    }
    static canParse(url, base) {
      try { new URL(url, base); return true; } catch { return false; }
    }
    static parse(url, base) {
      try { return new URL(url, base); } catch { return null; }
    }
    #set(field, value) {
      this.#parts = native.urlSet(this.#parts[0], field, wellFormed(String(value)));
      if (this.#params) paramsReset(this.#params, this.#parts[9], this);
    }
    get searchParams() {
      if (!this.#params) {
        this.#params = new URLSearchParams();
        paramsReset(this.#params, this.#parts[9], this);
      }
      return this.#params;
    }
    toString() { return this.#parts[0]; }
    toJSON() { return this.#parts[0]; }
    get [Symbol.toStringTag]() { return "URL"; }
    static {
      FIELDS.forEach((field, i) => {
        const descriptor = { get() { return this.#parts[i]; }, configurable: true, enumerable: true };
        if (field !== "origin") {
          descriptor.set = function (value) { this.#set(field, value); };
        }
        Object.defineProperty(URL.prototype, field, descriptor);
      });
    }
  }

  define("URLSearchParams", URLSearchParams);
  define("URL", URL);
  internals.paramsList = paramsList;
})
