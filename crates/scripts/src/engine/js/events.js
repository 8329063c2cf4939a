// Prelude, part 2: events, cancellation, time and cloning.
// Owns: DOMException, Event, EventTarget, AbortController, AbortSignal,
// performance (now, timeOrigin), structuredClone. Plain JavaScript over the
// engine's timers; no natives of its own.
(function (native, internals) {
  "use strict";

  const { define } = internals;

  // --- DOMException (webcrypto.js and fetch throw it too)

  class DOMException extends Error {
    #name;
    constructor(message = "", name = "Error") {
      super(String(message));
      this.#name = String(name);
    }
    get name() { return this.#name; }
    get code() { return DOMException.#codes[this.#name] ?? 0; }
    static #codes = { AbortError: 20, TimeoutError: 23, DataCloneError: 25, InvalidStateError: 11, NotSupportedError: 9 };
  }
  if (typeof globalThis.DOMException !== "function") define("DOMException", DOMException);
  const Exception = globalThis.DOMException;

  // --- Event and EventTarget

  class Event {
    #type;
    #cancelable;
    #defaultPrevented = false;
    #target = null;
    #timeStamp;
    #stopped = false;
    constructor(type, init = {}) {
      if (arguments.length === 0) throw new TypeError("Event: a type is required");
      this.#type = String(type);
      this.#cancelable = !!init?.cancelable;
      this.#timeStamp = performanceNow();
    }
    get type() { return this.#type; }
    get target() { return this.#target; }
    get currentTarget() { return this.#target; }
    get cancelable() { return this.#cancelable; }
    get defaultPrevented() { return this.#defaultPrevented; }
    get timeStamp() { return this.#timeStamp; }
    get bubbles() { return false; }
    preventDefault() { if (this.#cancelable) this.#defaultPrevented = true; }
    stopPropagation() {}
    stopImmediatePropagation() { this.#stopped = true; }
    static {
      internals.setEventTarget = (event, target) => { event.#target = target; };
      internals.eventStopped = (event) => event.#stopped;
    }
    get [Symbol.toStringTag]() { return "Event"; }
  }

  class EventTarget {
    #listeners = new Map(); // type => [{ callback, once }]
    addEventListener(type, callback, options) {
      if (callback === null || callback === undefined) return;
      const once = typeof options === "object" && options !== null && !!options.once;
      const signal = typeof options === "object" && options !== null ? options.signal : undefined;
      if (signal?.aborted) return;
      const key = String(type);
      const list = this.#listeners.get(key) ?? [];
      if (list.some((l) => l.callback === callback)) return;
      const entry = { callback, once };
      list.push(entry);
      this.#listeners.set(key, list);
      signal?.addEventListener("abort", () => this.removeEventListener(key, callback));
    }
    removeEventListener(type, callback) {
      const key = String(type);
      const list = this.#listeners.get(key);
      if (list) this.#listeners.set(key, list.filter((l) => l.callback !== callback));
    }
    dispatchEvent(event) {
      if (!(event instanceof Event)) throw new TypeError("dispatchEvent: the argument is not an Event");
      internals.setEventTarget(event, this);
      const handler = this[`on${event.type}`];
      const listeners = [...(this.#listeners.get(event.type) ?? [])];
      if (typeof handler === "function") listeners.unshift({ callback: handler, once: false });
      for (const l of listeners) {
        if (l.once) this.removeEventListener(event.type, l.callback);
        try {
          if (typeof l.callback === "function") l.callback.call(this, event);
          else if (typeof l.callback?.handleEvent === "function") l.callback.handleEvent(event);
        } catch (e) {
          // A listener's error does not stop the others (as in browsers).
          console.error(e);
        }
        if (internals.eventStopped(event)) break;
      }
      return !event.defaultPrevented;
    }
    get [Symbol.toStringTag]() { return "EventTarget"; }
  }

  // --- AbortController and AbortSignal

  let makeSignal; // () => AbortSignal
  let signalAbort; // (signal, reason) => void

  class AbortSignal extends EventTarget {
    #aborted = false;
    #reason = undefined;
    onabort = null;
    constructor(key) {
      if (key !== internals) throw new TypeError("AbortSignal: use new AbortController().signal, AbortSignal.abort() or AbortSignal.timeout()");
      super();
    }
    static {
      makeSignal = () => new AbortSignal(internals);
      signalAbort = (signal, reason) => {
        if (signal.#aborted) return;
        signal.#aborted = true;
        signal.#reason = reason === undefined ? new Exception("This operation was aborted", "AbortError") : reason;
        signal.dispatchEvent(new Event("abort"));
      };
    }
    get aborted() { return this.#aborted; }
    get reason() { return this.#reason; }
    throwIfAborted() { if (this.#aborted) throw this.#reason; }
    static abort(reason) {
      const s = makeSignal();
      signalAbort(s, reason);
      return s;
    }
    static timeout(ms) {
      const delay = Number(ms);
      if (!(delay >= 0)) throw new TypeError("AbortSignal.timeout: give a number of milliseconds");
      const s = makeSignal();
      setTimeout(() => signalAbort(s, new Exception("The operation timed out", "TimeoutError")), delay);
      return s;
    }
    static any(signals) {
      const s = makeSignal();
      for (const one of signals) {
        if (one.aborted) {
          signalAbort(s, one.reason);
          return s;
        }
      }
      for (const one of signals) one.addEventListener("abort", () => signalAbort(s, one.reason), { once: true });
      return s;
    }
    get [Symbol.toStringTag]() { return "AbortSignal"; }
  }

  class AbortController {
    #signal = makeSignal();
    get signal() { return this.#signal; }
    abort(reason) { signalAbort(this.#signal, reason); }
    get [Symbol.toStringTag]() { return "AbortController"; }
  }

  // --- performance: milliseconds since the invocation's prelude loaded

  const timeOrigin = Date.now();
  const clock = typeof native.monotonicMs === "function" ? native.monotonicMs : Date.now;
  const clockOrigin = clock();
  function performanceNow() { return clock() - clockOrigin; }
  const performance = Object.freeze({
    now: performanceNow,
    timeOrigin,
    toJSON() { return { timeOrigin }; },
  });

  // --- structuredClone: the HTML structured clone of plain data

  function structuredClone(value, options) {
    if (options?.transfer?.length) throw new Exception("structuredClone: transfer is not supported", "DataCloneError");
    const seen = new Map();
    const clone = (v) => {
      if (typeof v === "function" || typeof v === "symbol") {
        throw new Exception(`${typeof v === "function" ? "a function" : "a symbol"} cannot be cloned`, "DataCloneError");
      }
      if (typeof v !== "object" || v === null) return v;
      if (seen.has(v)) return seen.get(v);
      let out;
      if (v instanceof Date) out = new Date(v.getTime());
      else if (v instanceof RegExp) out = new RegExp(v.source, v.flags);
      else if (v instanceof ArrayBuffer) out = v.slice(0);
      else if (ArrayBuffer.isView(v)) {
        const buffer = clone(v.buffer);
        out = v instanceof DataView
          ? new DataView(buffer, v.byteOffset, v.byteLength)
          : new v.constructor(buffer, v.byteOffset, v.length);
      } else if (v instanceof Map) {
        out = new Map();
        seen.set(v, out);
        for (const [k, x] of v) out.set(clone(k), clone(x));
        return out;
      } else if (v instanceof Set) {
        out = new Set();
        seen.set(v, out);
        for (const x of v) out.add(clone(x));
        return out;
      } else if (v instanceof Error) {
        const ctor = [EvalError, RangeError, ReferenceError, SyntaxError, TypeError, URIError].find((c) => v instanceof c) ?? Error;
        out = new ctor(v.message);
        if (v.stack !== undefined) out.stack = v.stack;
      } else if (typeof Blob === "function" && v instanceof Blob) {
        out = v.slice(0, v.size, v.type);
      } else if (Array.isArray(v)) {
        out = new Array(v.length);
        seen.set(v, out);
        for (const k of Object.keys(v)) out[k] = clone(v[k]);
        return out;
      } else if (v instanceof Boolean || v instanceof Number || v instanceof String) {
        out = Object(v.valueOf());
      } else {
        const proto = Object.getPrototypeOf(v);
        if (proto !== Object.prototype && proto !== null) {
          throw new Exception(`${v.constructor?.name ?? "this object"} cannot be cloned`, "DataCloneError");
        }
        out = {};
        seen.set(v, out);
        for (const k of Object.keys(v)) out[k] = clone(v[k]);
        return out;
      }
      seen.set(v, out);
      return out;
    };
    return clone(value);
  }

  define("Event", Event);
  define("EventTarget", EventTarget);
  define("AbortController", AbortController);
  define("AbortSignal", AbortSignal);
  define("performance", performance);
  define("structuredClone", structuredClone);
  internals.abortError = () => new Exception("This operation was aborted", "AbortError");
})
