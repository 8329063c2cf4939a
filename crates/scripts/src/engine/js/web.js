// Prelude, part 2: HTTP objects.
// Owns: Headers, Request, Response, fetch, and the internal constructors the
// engine uses (internals.makeRequest, makeResponse, headerPairs, bodyOf).
// A body is whole bytes (a Blob or FormData is turned into bytes when it is
// made; FormData as multipart, blob.js) or a ReadableStream (streams.js),
// read whole by text()/json()/..., and sent chunk by chunk when a handler
// answers with it (runtime.js).
(function (native, internals) {
  "use strict";

  const { toBytes, utf8Encode, utf8Decode, wellFormed, define } = internals;

  const TOKEN = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;
  const normName = (name) => {
    const n = String(name);
    if (!TOKEN.test(n)) throw new TypeError(`invalid header name: "${n}"`);
    return n.toLowerCase();
  };
  const normValue = (value) => {
    const v = wellFormed(String(value)).replace(/^[\t\n\r ]+|[\t\n\r ]+$/g, "");
    if (/[\0\r\n]/.test(v)) throw new TypeError("invalid header value: it contains a NUL, CR or LF");
    return v;
  };

  let headerList; // (headers) => [[name, value], ...] as appended

  class Headers {
    #list = [];
    constructor(init) {
      if (init === undefined || init === null) return;
      if (init instanceof Headers) {
        this.#list = init.#list.map(([k, v]) => [k, v]);
      } else if (typeof init === "object" && typeof init[Symbol.iterator] === "function") {
        for (const pair of init) {
          const p = [...pair];
          if (p.length !== 2) throw new TypeError("Headers: each pair needs a name and a value");
          this.append(p[0], p[1]);
        }
      } else if (typeof init === "object") {
        for (const key of Object.keys(init)) this.append(key, init[key]);
      } else {
        throw new TypeError("Headers: init must be an object, an array of pairs or a Headers");
      }
    }
    static {
      headerList = (h) => h.#list;
    }
    append(name, value) { this.#list.push([normName(name), normValue(value)]); }
    delete(name) { const n = normName(name); this.#list = this.#list.filter(([k]) => k !== n); }
    get(name) {
      const n = String(name).toLowerCase();
      const values = this.#list.filter(([k]) => k === n).map(([, v]) => v);
      return values.length ? values.join(", ") : null;
    }
    getSetCookie() { return this.#list.filter(([k]) => k === "set-cookie").map(([, v]) => v); }
    has(name) { const n = String(name).toLowerCase(); return this.#list.some(([k]) => k === n); }
    set(name, value) {
      const n = normName(name);
      const v = normValue(value);
      const i = this.#list.findIndex(([k]) => k === n);
      if (i < 0) this.#list.push([n, v]);
      else {
        this.#list[i] = [n, v];
        this.#list = this.#list.filter(([k], j) => j <= i || k !== n);
      }
    }
    *entries() {
      const names = [...new Set(this.#list.map(([k]) => k))].sort();
      for (const name of names) {
        if (name === "set-cookie") for (const v of this.getSetCookie()) yield [name, v];
        else yield [name, this.get(name)];
      }
    }
    *keys() { for (const [k] of this.entries()) yield k; }
    *values() { for (const [, v] of this.entries()) yield v; }
    forEach(callback, thisArg) { for (const [k, v] of this.entries()) callback.call(thisArg, v, k, this); }
    [Symbol.iterator]() { return this.entries(); }
    get [Symbol.toStringTag]() { return "Headers"; }
  }

  // Body readers shared by Request and Response. `get(this)` gives the
  // body (bytes, a stream or null), `set(this, bytes)` keeps a stream's
  // bytes once read. A body of bytes may be read more than once; a stream
  // is read once (then the bytes it gave are kept).
  function addBodyMethods(cls, get, set) {
    const read = async (r) => {
      const b = get(r);
      if (!internals.isReadable(b)) return b;
      const bytes = await internals.readAll(b, `${cls.name} body`);
      set(r, bytes);
      return bytes;
    };
    Object.assign(cls.prototype, {
      async arrayBuffer() { const b = await read(this); return b ? b.slice().buffer : new ArrayBuffer(0); },
      async bytes() { const b = await read(this); return b ? b.slice() : new Uint8Array(0); },
      async text() { const b = await read(this); return b ? utf8Decode(b, false) : ""; },
      async json() { const b = await read(this); return JSON.parse(b ? utf8Decode(b, false) : ""); },
      async blob() {
        const b = await read(this);
        return new Blob(b ? [b] : [], { type: this.headers.get("content-type") ?? "" });
      },
      async formData() { return internals.decodeForm((await read(this)) ?? new Uint8Array(0), this.headers.get("content-type")); },
    });
    // A body of bytes stays bytes (sent whole, with its length); `body`
    // hands out one stream over them, kept per object.
    const views = new WeakMap();
    Object.defineProperty(cls.prototype, "body", {
      get() {
        const b = get(this);
        if (b === null || internals.isReadable(b)) return b;
        if (!views.has(this)) views.set(this, internals.streamOf(b));
        return views.get(this);
      },
      configurable: true,
    });
    Object.defineProperty(cls.prototype, "bodyUsed", {
      get() { const b = get(this); return internals.isReadable(b) && b.locked; },
      configurable: true,
    });
  }

  // A body from user code, with the content-type it implies.
  function extractBody(body, what) {
    if (body === undefined || body === null) return [null, null];
    if (typeof body === "string") return [utf8Encode(body), "text/plain;charset=UTF-8"];
    if (body instanceof URLSearchParams) return [utf8Encode(body.toString()), "application/x-www-form-urlencoded;charset=UTF-8"];
    if (body instanceof ArrayBuffer || ArrayBuffer.isView(body)) return [toBytes(body, what).slice(), null];
    if (body instanceof Blob) return [internals.blobBytes(body).slice(), body.type || null];
    if (body instanceof FormData) return internals.encodeMultipart(body);
    if (internals.isReadable(body)) return [body, null];
    throw new TypeError(`${what} must be a string, Uint8Array, ArrayBuffer, Blob, FormData, URLSearchParams, ReadableStream or null; use Response.json(value) or JSON.stringify for objects`);
  }

  const METHODS = ["DELETE", "GET", "HEAD", "OPTIONS", "POST", "PUT", "PATCH"];
  let requestBody; // (request) => bytes or null
  let setRequest; // (request, method, url, headers, body) => request
  let setRequestBody; // (request, body) => void
  // A body for a copy: a stream is teed (one branch stays with the
  // original through `keep`), bytes are shared.
  const teeBody = (body, keep) => {
    if (!internals.isReadable(body)) return body;
    const [mine, theirs] = body.tee();
    keep(mine);
    return theirs;
  };

  class Request {
    #method = "GET";
    #url = "";
    #headers;
    #body = null;
    constructor(input, init = {}) {
      if (input === internals) return; // internal construction, see makeRequest
      init = init ?? {};
      if (input instanceof Request) {
        this.#method = input.#method;
        this.#url = input.#url;
        this.#headers = new Headers(input.#headers);
        this.#body = teeBody(input.#body, (b) => { input.#body = b; });
      } else {
        this.#url = new URL(String(input)).href;
        this.#headers = new Headers();
      }
      if (init.method !== undefined) {
        const m = String(init.method);
        if (!/^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/.test(m)) throw new TypeError(`invalid method: "${m}"`);
        this.#method = METHODS.includes(m.toUpperCase()) ? m.toUpperCase() : m;
      }
      if (init.headers !== undefined) this.#headers = new Headers(init.headers);
      if (init.body !== undefined && init.body !== null) {
        if (this.#method === "GET" || this.#method === "HEAD") throw new TypeError(`a ${this.#method} request cannot have a body`);
        const [bytes, type] = extractBody(init.body, "request body");
        this.#body = bytes;
        if (type && !this.#headers.has("content-type")) this.#headers.set("content-type", type);
      }
    }
    static {
      requestBody = (r) => r.#body;
      setRequestBody = (r, b) => { r.#body = b; };
      setRequest = (r, method, url, headers, body) => {
        r.#method = method;
        r.#url = url;
        r.#headers = headers;
        r.#body = body;
        return r;
      };
    }
    get method() { return this.#method; }
    get url() { return this.#url; }
    get headers() { return this.#headers; }
    clone() { return new Request(this); }
    get [Symbol.toStringTag]() { return "Request"; }
  }
  addBodyMethods(Request, (r) => requestBody(r), (r, b) => { setRequestBody(r, b); });

  const NULL_BODY = [101, 204, 205, 304];
  let responseBody; // (response) => bytes or null
  let setResponse; // (response, status, headers, body, url) => response
  let setResponseBody; // (response, body) => void

  class Response {
    #status = 200;
    #statusText = "";
    #headers;
    #body = null;
    #url = "";
    constructor(body = null, init = {}) {
      if (body === internals) return; // internal construction, see makeResponse
      init = init ?? {};
      const status = init.status === undefined ? 200 : init.status;
      if (!Number.isInteger(status) || status < 200 || status > 599) {
        throw new RangeError(`Response status must be an integer from 200 to 599, not ${String(status)}`);
      }
      this.#status = status;
      this.#statusText = init.statusText === undefined ? "" : String(init.statusText);
      this.#headers = new Headers(init.headers);
      const [bytes, type] = extractBody(body, "Response body");
      if (bytes !== null && NULL_BODY.includes(status)) throw new TypeError(`a ${status} response cannot have a body`);
      this.#body = bytes;
      if (type && !this.#headers.has("content-type")) this.#headers.set("content-type", type);
    }
    static {
      responseBody = (r) => r.#body;
      setResponseBody = (r, b) => { r.#body = b; };
      setResponse = (r, status, headers, body, url) => {
        r.#status = status;
        r.#headers = headers;
        r.#body = body;
        r.#url = url;
        return r;
      };
    }
    static json(data, init = {}) {
      const text = JSON.stringify(data);
      if (text === undefined) throw new TypeError("Response.json: the value cannot be serialized as JSON");
      const headers = new Headers(init?.headers);
      if (!headers.has("content-type")) headers.set("content-type", "application/json");
      return new Response(text, { ...init, headers });
    }
    static redirect(url, status = 302) {
      if (![301, 302, 303, 307, 308].includes(status)) throw new RangeError(`Response.redirect: ${status} is not a redirect status`);
      return new Response(null, { status, headers: { location: new URL(String(url)).href } });
    }
    get status() { return this.#status; }
    get statusText() { return this.#statusText; }
    get ok() { return this.#status >= 200 && this.#status <= 299; }
    get headers() { return this.#headers; }
    get url() { return this.#url; }
    get redirected() { return false; }
    get type() { return "default"; }
    clone() {
      const copy = new Response(internals);
      const body = teeBody(this.#body, (b) => { this.#body = b; });
      return setResponse(copy, this.#status, new Headers(this.#headers), body, this.#url);
    }
    get [Symbol.toStringTag]() { return "Response"; }
  }
  addBodyMethods(Response, (r) => responseBody(r), (r, b) => { setResponseBody(r, b); });

  internals.headerPairs = (headers) => headerList(headers).flat();
  internals.responseBody = responseBody;
  internals.makeRequest = (method, url, flatHeaders, body) => {
    const headers = new Headers();
    for (let i = 0; i + 1 < flatHeaders.length; i += 2) {
      try { headers.append(flatHeaders[i], flatHeaders[i + 1]); } catch { /* skip what HTTP would not carry */ }
    }
    return setRequest(new Request(internals), method, url, headers, body.length ? body : null);
  };
  internals.makeResponse = (status, flatHeaders, body, url) => {
    const headers = new Headers();
    for (let i = 0; i + 1 < flatHeaders.length; i += 2) {
      try { headers.append(flatHeaders[i], flatHeaders[i + 1]); } catch { /* skip */ }
    }
    return setResponse(new Response(internals), status, headers, body.length ? body : null, url);
  };

  async function fetch(input, init = {}) {
    init = init ?? {};
    const request = new Request(input, init);
    const protocol = new URL(request.url).protocol;
    if (protocol !== "http:" && protocol !== "https:") {
      throw new TypeError(`fetch supports only http and https URLs, not ${protocol}`);
    }
    let timeout = 0;
    if (init.timeout !== undefined) {
      timeout = Number(init.timeout);
      if (!(timeout > 0)) throw new TypeError("fetch: init.timeout must be a positive number of milliseconds");
    }
    const signal = init.signal;
    if (signal !== undefined && signal !== null && !(signal instanceof AbortSignal)) {
      throw new TypeError("fetch: init.signal must be an AbortSignal");
    }
    signal?.throwIfAborted();
    let body = requestBody(request);
    if (internals.isReadable(body)) body = await internals.readAll(body, "fetch body");
    const sent = native.fetch(
      request.method,
      request.url,
      headerList(request.headers).flat(),
      body ?? new Uint8Array(0),
      timeout,
    );
    // An abort settles the script's promise at once with the signal's
    // reason; the request itself runs out in the daemon (within its timeout).
    const [status, flat, bytes] = signal
      ? await new Promise((resolve, reject) => {
          const onAbort = () => reject(signal.reason);
          signal.addEventListener("abort", onAbort, { once: true });
          sent.then(
            (v) => { signal.removeEventListener("abort", onAbort); resolve(v); },
            (e) => { signal.removeEventListener("abort", onAbort); reject(e); },
          );
        })
      : await sent;
    return internals.makeResponse(status, flat, bytes, request.url);
  }

  define("Headers", Headers);
  define("Request", Request);
  define("Response", Response);
  define("fetch", fetch);
})
