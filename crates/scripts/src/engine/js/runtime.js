// Prelude, part 3: the script's runtime services.
// Owns: console, crypto (its `subtle` from webcrypto.js), timers, the ctx object with its ctx.cubby client,
// and internals.invoke, which calls the handler and normalizes its return
// value into [status, flatHeaders, body] (or a BadReturn message).
(function (native, internals) {
  "use strict";

  const { toBytes, wellFormed, define } = internals;

  // --- console

  function describe(value) {
    switch (typeof value) {
      case "string": return value;
      case "undefined": return "undefined";
      case "bigint": return `${value}n`;
      case "symbol": return value.toString();
      case "function": return `[Function: ${value.name || "(anonymous)"}]`;
      case "object": break;
      default: return String(value);
    }
    if (value === null) return "null";
    if (value instanceof Error) {
      const head = `${value.name}: ${value.message}`;
      return value.stack ? `${head}\n${String(value.stack).replace(/\s+$/, "")}` : head;
    }
    const seen = new WeakSet();
    try {
      const text = JSON.stringify(value, function (_key, v) {
        if (typeof v === "bigint") return `${v}n`;
        if (typeof v === "function") return `[Function: ${v.name || "(anonymous)"}]`;
        if (typeof v === "symbol") return v.toString();
        if (v === undefined) return v;
        if (typeof v === "object" && v !== null) {
          if (seen.has(v)) return "[Circular]";
          seen.add(v);
          if (v instanceof Error) return `${v.name}: ${v.message}`;
          if (v instanceof Map) return Object.fromEntries(v);
          if (v instanceof Set) return [...v];
          if (v instanceof Headers || v instanceof URLSearchParams) return Object.fromEntries(v);
          if (v instanceof Request) return { method: v.method, url: v.url };
          if (v instanceof Response) return { status: v.status, headers: Object.fromEntries(v.headers) };
        }
        return v;
      });
      return text === undefined ? String(value) : text;
    } catch {
      try { return String(value); } catch { return "[object]"; }
    }
  }
  internals.describe = describe;

  const log = (level) => (...args) => native.log(level, wellFormed(args.map(describe).join(" ")));
  const console = {
    log: log("log"),
    info: log("info"),
    warn: log("warn"),
    error: log("error"),
    debug: log("debug"),
    trace: log("debug"),
    assert(condition, ...args) {
      if (!condition) native.log("error", wellFormed(["Assertion failed", ...args.map(describe)].join(" ")));
    },
  };
  define("console", console);

  // --- crypto

  const INTEGER_ARRAYS = [Int8Array, Uint8Array, Uint8ClampedArray, Int16Array, Uint16Array, Int32Array, Uint32Array, BigInt64Array, BigUint64Array];
  const crypto = {
    randomUUID: () => native.randomUUID(),
    getRandomValues(array) {
      if (!INTEGER_ARRAYS.some((T) => array instanceof T)) {
        throw new TypeError("crypto.getRandomValues wants an integer typed array, like new Uint8Array(16)");
      }
      if (array.byteLength > 65536) throw new RangeError("crypto.getRandomValues fills at most 65536 bytes at once");
      new Uint8Array(array.buffer, array.byteOffset, array.byteLength).set(native.randomBytes(array.byteLength));
      return array;
    },
    sha256: (data) => native.sha256(toBytes(data, "crypto.sha256 data")),
    hmacSha256: (key, data) => native.hmacSha256(toBytes(key, "crypto.hmacSha256 key"), toBytes(data, "crypto.hmacSha256 data")),
    timingSafeEqual: (a, b) => native.timingSafeEqual(toBytes(a, "crypto.timingSafeEqual a"), toBytes(b, "crypto.timingSafeEqual b")),
    subtle: internals.subtle,
  };
  define("crypto", Object.freeze(crypto));

  // --- timers (host-side sleeps; pending timers die with the invocation)

  let nextTimer = 1;
  const timers = new Set();
  const uncaught = (e) => native.log("error", wellFormed(`Uncaught ${describe(e)}`));
  const delayOf = (ms) => { const n = Number(ms); return n > 0 ? n : 0; };
  function setTimeout(callback, ms = 0, ...args) {
    if (typeof callback !== "function") throw new TypeError("setTimeout wants a function");
    const id = nextTimer++;
    timers.add(id);
    native.sleep(delayOf(ms)).then(() => { if (timers.delete(id)) callback(...args); }).catch(uncaught);
    return id;
  }
  function setInterval(callback, ms = 0, ...args) {
    if (typeof callback !== "function") throw new TypeError("setInterval wants a function");
    const id = nextTimer++;
    timers.add(id);
    const tick = () => native.sleep(Math.max(delayOf(ms), 1)).then(() => {
      if (!timers.has(id)) return;
      callback(...args);
      tick();
    }).catch(uncaught);
    tick();
    return id;
  }
  const clear = (id) => { timers.delete(id); };
  define("setTimeout", setTimeout);
  define("setInterval", setInterval);
  define("clearTimeout", clear);
  define("clearInterval", clear);
  if (typeof globalThis.queueMicrotask !== "function") {
    define("queueMicrotask", (callback) => { Promise.resolve().then(callback).catch(uncaught); });
  }

  // --- ctx.cubby: the project's API client over native.cubby

  function makeCubby(project) {
    const seg = (value, what) => {
      if (value === undefined || value === null || value === "") throw new TypeError(`ctx.cubby: ${what} is required`);
      const s = String(value);
      if (s === "." || s === "..") throw new TypeError(`ctx.cubby: "${s}" cannot be ${what}`);
      return encodeURIComponent(s);
    };
    const query = (q) => {
      if (q === undefined || q === null) return "";
      const params = new URLSearchParams();
      for (const [k, v] of Object.entries(q)) if (v !== undefined && v !== null) params.append(k, String(v));
      const s = params.toString();
      return s ? `?${s}` : "";
    };
    async function request(method, path, body) {
      const m = String(method).toUpperCase();
      const p = String(path);
      if (!p.startsWith("/")) throw new TypeError(`ctx.cubby.request: the path must start with "/", like "/containers/c1"`);
      const json = body === undefined ? undefined : JSON.stringify(body);
      const [status, text] = await native.cubby(m, p, json);
      let data = null;
      if (status !== 204 && text !== "") {
        try { data = JSON.parse(text); } catch { data = text; }
      }
      if (status >= 400) {
        const api = data && typeof data === "object" && data.error ? data.error : {};
        const error = new Error(typeof api.message === "string" ? api.message : `the Cubby API answered ${status} to ${m} ${p}`);
        error.status = status;
        error.code = typeof api.code === "string" ? api.code : `http_${status}`;
        throw error;
      }
      return data;
    }
    const projectPath = `/projects/${seg(project, "the project id")}`;
    const c = (id) => `/containers/${seg(id, "the container id")}`;
    return Object.freeze({
      request,
      project: Object.freeze({
        get: () => request("GET", projectPath),
      }),
      containers: Object.freeze({
        list: (q) => request("GET", `${projectPath}/containers${query(q)}`),
        create: (body) => request("POST", `${projectPath}/containers`, body ?? {}),
        get: (id) => request("GET", c(id)),
        update: (id, body) => request("PATCH", c(id), body ?? {}),
        delete: (id) => request("DELETE", c(id)),
        start: (id) => request("POST", `${c(id)}/start`),
        stop: (id) => request("POST", `${c(id)}/stop`),
        restart: (id) => request("POST", `${c(id)}/restart`),
        copy: (id, body) => request("POST", `${c(id)}/copy`, body ?? {}),
        authorize: (id, body = {}) => request("POST", `${c(id)}/authorize`, body),
        revokeClaims: (id) => request("POST", `${c(id)}/revoke-claims`),
        exec: (id, body) => request("POST", `${c(id)}/exec`, body),
        logs: (id) => request("GET", `${c(id)}/logs`),
        transitions: (id) => request("GET", `${c(id)}/transitions`),
      }),
      snapshots: Object.freeze({
        list: (id) => request("GET", `${c(id)}/snapshots`),
        create: (id, body) => request("POST", `${c(id)}/snapshots`, body ?? {}),
        get: (id, name) => request("GET", `${c(id)}/snapshots/${seg(name, "the snapshot name")}`),
        delete: (id, name) => request("DELETE", `${c(id)}/snapshots/${seg(name, "the snapshot name")}`),
        restore: (id, name) => request("PUT", `${c(id)}/snapshots/${seg(name, "the snapshot name")}`),
      }),
      firewall: Object.freeze({
        get: (id) => request("GET", `${c(id)}/firewall`),
        replace: (id, body) => request("PUT", `${c(id)}/firewall`, body),
      }),
      network: Object.freeze({
        set: (id, body) => request("PUT", `${c(id)}/network`, body),
      }),
      aliases: Object.freeze({
        create: (body) => request("POST", "/aliases", body),
        delete: (name) => request("DELETE", `/aliases/${seg(name, "the alias name")}`),
      }),
    });
  }

  internals.makeContext = (params, env, project) =>
    ({ params: Object.freeze(params), env: Object.freeze(env), cubby: makeCubby(project) });

  // --- the call itself

  // Normalizes a handler's return value. A Response is sent as is, undefined
  // is 204, anything else is JSON. Answers [status, flatHeaders, body] or
  // [0, message] when the value cannot be sent.
  function finish(value) {
    if (value instanceof Response) {
      const body = internals.responseBody(value);
      if (internals.isReadable(body)) {
        // Streamed: the engine sends the head, then calls `next` for each
        // chunk until it answers null.
        const reader = body.getReader();
        const next = async () => {
          const { value: chunk, done } = await reader.read();
          if (done) return null;
          if (!(chunk instanceof ArrayBuffer) && !ArrayBuffer.isView(chunk)) {
            throw new TypeError("a Response body stream's chunks must be Uint8Array: encode text with TextEncoder or pipe it through a TextEncoderStream");
          }
          return toBytes(chunk, "a Response body chunk").slice();
        };
        return [value.status, internals.headerPairs(value.headers), null, next];
      }
      return [value.status, internals.headerPairs(value.headers), body ?? new Uint8Array(0)];
    }
    if (value === undefined) return [204, [], new Uint8Array(0)];
    let text;
    try {
      text = JSON.stringify(value);
    } catch (e) {
      return [0, `it is not a Response and JSON.stringify failed: ${describe(e)}`];
    }
    if (text === undefined) {
      return [0, `it is a ${typeof value}, which is neither a Response nor a JSON value; return a Response, a JSON value or nothing`];
    }
    return [200, ["content-type", "application/json"], internals.utf8Encode(text)];
  }

  internals.invoke = async (handler, request, ctx) => finish(await handler(request, ctx));
})
