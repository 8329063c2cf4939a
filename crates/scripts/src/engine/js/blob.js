// Prelude, part 3: binary objects and forms.
// Owns: Blob, File, FormData, and the multipart/form-data codec web.js uses
// for bodies (internals.encodeMultipart, internals.decodeForm). Blobs hold
// their bytes in memory, like every body here.
(function (native, internals) {
  "use strict";

  const { toBytes, utf8Encode, utf8Decode, define } = internals;

  // --- Blob and File

  let blobBytes; // (blob) => Uint8Array

  class Blob {
    #bytes;
    #type;
    constructor(parts = [], options = {}) {
      if (typeof parts !== "object" || parts === null || typeof parts[Symbol.iterator] !== "function") {
        throw new TypeError("Blob: the parts must be an array (or another iterable)");
      }
      const chunks = [];
      for (const part of parts) {
        if (part instanceof Blob) chunks.push(part.#bytes);
        else if (part instanceof ArrayBuffer || ArrayBuffer.isView(part)) chunks.push(toBytes(part, "Blob part").slice());
        else chunks.push(utf8Encode(String(part)));
      }
      let size = 0;
      for (const c of chunks) size += c.length;
      this.#bytes = new Uint8Array(size);
      let at = 0;
      for (const c of chunks) {
        this.#bytes.set(c, at);
        at += c.length;
      }
      const type = options?.type === undefined ? "" : String(options.type);
      this.#type = /^[\x20-\x7e]*$/.test(type) ? type.toLowerCase() : "";
    }
    static {
      blobBytes = (b) => b.#bytes;
    }
    get size() { return this.#bytes.length; }
    get type() { return this.#type; }
    slice(start = 0, end = this.#bytes.length, type = "") {
      const clamp = (i) => (i < 0 ? Math.max(this.#bytes.length + i, 0) : Math.min(i, this.#bytes.length));
      return new Blob([this.#bytes.subarray(clamp(start), Math.max(clamp(start), clamp(end)))], { type });
    }
    async arrayBuffer() { return this.#bytes.slice().buffer; }
    async bytes() { return this.#bytes.slice(); }
    async text() { return utf8Decode(this.#bytes, false); }
    get [Symbol.toStringTag]() { return "Blob"; }
  }

  class File extends Blob {
    #name;
    #lastModified;
    constructor(parts, name, options = {}) {
      if (arguments.length < 2) throw new TypeError("File: give the parts and a name");
      super(parts, options);
      this.#name = String(name);
      this.#lastModified = options?.lastModified === undefined ? Date.now() : Number(options.lastModified);
    }
    get name() { return this.#name; }
    get lastModified() { return this.#lastModified; }
    get webkitRelativePath() { return ""; }
    get [Symbol.toStringTag]() { return "File"; }
  }

  // --- FormData

  // A value as FormData keeps it: a string, or a File.
  function entryValue(value, filename) {
    if (value instanceof Blob) {
      if (value instanceof File && filename === undefined) return value;
      const name = filename === undefined ? "blob" : String(filename);
      return new File([value], name, { type: value.type });
    }
    return String(value);
  }

  let formEntries; // (form) => [[name, value], ...]

  class FormData {
    #entries = [];
    constructor(form) {
      if (form !== undefined) throw new TypeError("FormData: there is no form element to read here; append entries");
    }
    static {
      formEntries = (f) => f.#entries;
    }
    append(name, value, filename) { this.#entries.push([String(name), entryValue(value, filename)]); }
    set(name, value, filename) {
      const n = String(name);
      const v = entryValue(value, filename);
      const i = this.#entries.findIndex(([k]) => k === n);
      if (i < 0) this.#entries.push([n, v]);
      else this.#entries = this.#entries.filter(([k], j) => j <= i || k !== n).map((e, j) => (j === i ? [n, v] : e));
    }
    delete(name) { const n = String(name); this.#entries = this.#entries.filter(([k]) => k !== n); }
    get(name) { const e = this.#entries.find(([k]) => k === String(name)); return e ? e[1] : null; }
    getAll(name) { return this.#entries.filter(([k]) => k === String(name)).map(([, v]) => v); }
    has(name) { return this.#entries.some(([k]) => k === String(name)); }
    *entries() { for (const [k, v] of this.#entries) yield [k, v]; }
    *keys() { for (const [k] of this.#entries) yield k; }
    *values() { for (const [, v] of this.#entries) yield v; }
    forEach(callback, thisArg) { for (const [k, v] of this.#entries) callback.call(thisArg, v, k, this); }
    [Symbol.iterator]() { return this.entries(); }
    get [Symbol.toStringTag]() { return "FormData"; }
  }

  // --- multipart/form-data (RFC 7578)

  const escapeName = (s) => s.replace(/\n/g, "%0A").replace(/\r/g, "%0D").replace(/"/g, "%22");

  function concat(chunks) {
    let size = 0;
    for (const c of chunks) size += c.length;
    const out = new Uint8Array(size);
    let at = 0;
    for (const c of chunks) {
      out.set(c, at);
      at += c.length;
    }
    return out;
  }

  // A FormData as a multipart body: [bytes, content-type].
  internals.encodeMultipart = (form) => {
    const random = new Uint8Array(16);
    crypto.getRandomValues(random);
    const boundary = `----cubby${[...random].map((b) => b.toString(16).padStart(2, "0")).join("")}`;
    const chunks = [];
    for (const [name, value] of formEntries(form)) {
      let head = `--${boundary}\r\nContent-Disposition: form-data; name="${escapeName(name)}"`;
      if (value instanceof File) {
        head += `; filename="${escapeName(value.name)}"\r\nContent-Type: ${value.type || "application/octet-stream"}`;
        chunks.push(utf8Encode(`${head}\r\n\r\n`), blobBytes(value), utf8Encode("\r\n"));
      } else {
        chunks.push(utf8Encode(`${head}\r\n\r\n${value.replace(/\r(?!\n)|(?<!\r)\n/g, "\r\n")}\r\n`));
      }
    }
    chunks.push(utf8Encode(`--${boundary}--\r\n`));
    return [concat(chunks), `multipart/form-data; boundary=${boundary}`];
  };

  function indexOf(bytes, needle, from) {
    outer: for (let i = from; i + needle.length <= bytes.length; i++) {
      for (let j = 0; j < needle.length; j++) if (bytes[i + j] !== needle[j]) continue outer;
      return i;
    }
    return -1;
  }

  // A parameter of a header value (`boundary=...`, `name="..."`).
  function param(value, key) {
    const re = new RegExp(`(?:^|;)\\s*${key}\\s*=\\s*(?:"((?:[^"\\\\]|\\\\.)*)"|([^;\\s]*))`, "i");
    const m = re.exec(value);
    if (!m) return null;
    return m[1] !== undefined ? m[1].replace(/\\(.)/g, "$1") : m[2];
  }

  // A body with its content-type as a FormData (multipart or urlencoded).
  internals.decodeForm = (bytes, contentType) => {
    const type = String(contentType ?? "").toLowerCase();
    const form = new FormData();
    if (type.startsWith("application/x-www-form-urlencoded")) {
      for (const [k, v] of new URLSearchParams(utf8Decode(bytes, false))) form.append(k, v);
      return form;
    }
    if (!type.startsWith("multipart/form-data")) {
      throw new TypeError(`formData(): the body is ${contentType ? `"${contentType}"` : "untyped"}, not multipart/form-data or application/x-www-form-urlencoded`);
    }
    const boundary = param(String(contentType), "boundary");
    if (!boundary) throw new TypeError("formData(): the multipart content-type has no boundary");
    const delimiter = utf8Encode(`--${boundary}`);
    const crlf2 = utf8Encode("\r\n\r\n");
    let at = indexOf(bytes, delimiter, 0);
    if (at < 0) throw new TypeError("formData(): the multipart body has no part");
    for (;;) {
      at += delimiter.length;
      if (bytes[at] === 45 && bytes[at + 1] === 45) return form; // "--": the end
      if (bytes[at] === 13 && bytes[at + 1] === 10) at += 2;
      const headEnd = indexOf(bytes, crlf2, at);
      if (headEnd < 0) throw new TypeError("formData(): a part has no end of headers");
      const headers = utf8Decode(bytes.subarray(at, headEnd), false).split("\r\n");
      const next = indexOf(bytes, utf8Encode(`\r\n--${boundary}`), headEnd + 4);
      if (next < 0) throw new TypeError("formData(): the multipart body is cut");
      const body = bytes.subarray(headEnd + 4, next);
      let disposition = "";
      let partType = "";
      for (const line of headers) {
        const i = line.indexOf(":");
        const key = line.slice(0, i).trim().toLowerCase();
        if (key === "content-disposition") disposition = line.slice(i + 1);
        else if (key === "content-type") partType = line.slice(i + 1).trim();
      }
      const name = param(disposition, "name");
      if (name === null) throw new TypeError("formData(): a part has no name");
      const filename = param(disposition, "filename");
      if (filename !== null) form.append(name, new File([body], filename, { type: partType }));
      else form.append(name, utf8Decode(body, false));
      at = next + 2;
    }
  };
  internals.blobBytes = blobBytes;

  define("Blob", Blob);
  define("File", File);
  define("FormData", FormData);
})
