// Prelude part: the WHATWG Streams a script's code uses: ReadableStream
// (default readers, async iteration, tee, pipeTo, pipeThrough, from),
// WritableStream (default writers), TransformStream, the two queuing
// strategies, TextEncoderStream and TextDecoderStream.
// Owns: those globals, and internals.isReadable / internals.readAll /
// internals.streamOf (web.js makes bodies of them, runtime.js sends a
// streamed Response chunk by chunk). Byte streams (`type: "bytes"`, BYOB
// readers) are not here: they throw a TypeError saying so.
(function (native, internals) {
  "use strict";

  const { define, toBytes } = internals;
  const resolved = (value) => Promise.resolve(value);
  const deferred = () => {
    let resolve, reject;
    const promise = new Promise((a, b) => { resolve = a; reject = b; });
    promise.catch(() => {});
    return { promise, resolve, reject };
  };
  const call = (object, name, args) => {
    const f = object && object[name];
    if (f === undefined) return resolved(undefined);
    if (typeof f !== "function") throw new TypeError(`${name} must be a function`);
    try {
      return resolved(f.apply(object, args));
    } catch (e) {
      return Promise.reject(e);
    }
  };
  const sizeOf = (strategy) => {
    const size = strategy && strategy.size;
    if (size === undefined) return () => 1;
    if (typeof size !== "function") throw new TypeError("a queuing strategy's size must be a function");
    return size;
  };
  const highWaterMark = (strategy, fallback) => {
    const hwm = strategy && strategy.highWaterMark !== undefined ? Number(strategy.highWaterMark) : fallback;
    if (Number.isNaN(hwm) || hwm < 0) throw new RangeError("highWaterMark must be a non-negative number");
    return hwm;
  };

  // --- ReadableStream

  const readableState = new WeakMap();

  class ReadableStreamDefaultController {
    #s;
    constructor(key, s) {
      if (key !== internals) throw new TypeError("ReadableStreamDefaultController is made by ReadableStream");
      this.#s = s;
    }
    get desiredSize() {
      const s = this.#s;
      if (s.state === "errored") return null;
      if (s.state === "closed") return 0;
      return s.hwm - s.queueSize;
    }
    enqueue(chunk) {
      const s = this.#s;
      if (s.closeRequested || s.state !== "readable") throw new TypeError("the stream is closed or errored: it cannot take more chunks");
      if (s.readRequests.length) {
        s.readRequests.shift().resolve({ value: chunk, done: false });
      } else {
        let size;
        try {
          size = Number(s.size(chunk));
        } catch (e) {
          this.error(e);
          throw e;
        }
        s.queue.push([chunk, size]);
        s.queueSize += size;
      }
      pullIfNeeded(s);
    }
    close() {
      const s = this.#s;
      if (s.closeRequested || s.state !== "readable") throw new TypeError("the stream is already closed or errored");
      s.closeRequested = true;
      if (!s.queue.length) finishClose(s);
    }
    error(reason) {
      errorReadable(this.#s, reason);
    }
  }

  function finishClose(s) {
    s.state = "closed";
    for (const r of s.readRequests.splice(0)) r.resolve({ value: undefined, done: true });
    s.closed.resolve(undefined);
  }

  function errorReadable(s, reason) {
    if (s.state !== "readable") return;
    s.state = "errored";
    s.storedError = reason;
    s.queue = [];
    s.queueSize = 0;
    for (const r of s.readRequests.splice(0)) r.reject(reason);
    s.closed.reject(reason);
  }

  function pullIfNeeded(s) {
    if (!s.started || s.state !== "readable" || s.closeRequested) return;
    const wanted = s.readRequests.length > 0 || s.hwm - s.queueSize > 0;
    if (!wanted) return;
    if (s.pulling) {
      s.pullAgain = true;
      return;
    }
    s.pulling = true;
    call(s.source, "pull", [s.controller]).then(
      () => {
        s.pulling = false;
        if (s.pullAgain) {
          s.pullAgain = false;
          pullIfNeeded(s);
        }
      },
      (e) => errorReadable(s, e),
    );
  }

  function readOne(s) {
    if (s.state === "errored") return Promise.reject(s.storedError);
    if (s.queue.length) {
      const [chunk, size] = s.queue.shift();
      s.queueSize -= size;
      if (s.closeRequested && !s.queue.length) finishClose(s);
      else pullIfNeeded(s);
      return resolved({ value: chunk, done: false });
    }
    if (s.state === "closed") return resolved({ value: undefined, done: true });
    const request = deferred();
    s.readRequests.push(request);
    pullIfNeeded(s);
    return request.promise;
  }

  function cancelReadable(s, reason) {
    if (s.state === "closed") return resolved(undefined);
    if (s.state === "errored") return Promise.reject(s.storedError);
    s.queue = [];
    s.queueSize = 0;
    finishClose(s);
    return call(s.source, "cancel", [reason]).then(() => undefined);
  }

  class ReadableStreamDefaultReader {
    #s;
    constructor(stream) {
      const s = readableState.get(stream);
      if (!s) throw new TypeError("ReadableStreamDefaultReader needs a ReadableStream");
      if (s.reader) throw new TypeError("the stream is locked to another reader");
      s.reader = this;
      this.#s = s;
    }
    get closed() {
      return this.#s ? this.#s.closed.promise : Promise.reject(new TypeError("the reader was released"));
    }
    read() {
      if (!this.#s) return Promise.reject(new TypeError("the reader was released"));
      return readOne(this.#s);
    }
    cancel(reason) {
      if (!this.#s) return Promise.reject(new TypeError("the reader was released"));
      return cancelReadable(this.#s, reason);
    }
    releaseLock() {
      const s = this.#s;
      if (!s) return;
      for (const r of s.readRequests.splice(0)) r.reject(new TypeError("the reader was released"));
      s.reader = null;
      this.#s = null;
    }
  }

  class ReadableStream {
    constructor(source = {}, strategy = {}) {
      if (source === null || typeof source !== "object") source = {};
      if (source.type !== undefined) {
        throw new TypeError(`ReadableStream of type "${source.type}" is not supported here: use a default stream of Uint8Array chunks`);
      }
      const s = {
        source,
        state: "readable",
        queue: [],
        queueSize: 0,
        readRequests: [],
        hwm: highWaterMark(strategy, 1),
        size: sizeOf(strategy),
        started: false,
        pulling: false,
        pullAgain: false,
        closeRequested: false,
        storedError: undefined,
        reader: null,
        closed: deferred(),
      };
      s.controller = new ReadableStreamDefaultController(internals, s);
      readableState.set(this, s);
      call(source, "start", [s.controller]).then(
        () => {
          s.started = true;
          pullIfNeeded(s);
        },
        (e) => errorReadable(s, e),
      );
    }
    get locked() {
      return readableState.get(this).reader !== null;
    }
    cancel(reason) {
      const s = readableState.get(this);
      if (s.reader) return Promise.reject(new TypeError("the stream is locked to a reader"));
      return cancelReadable(s, reason);
    }
    getReader(options = {}) {
      if (options && options.mode !== undefined) {
        throw new TypeError(`getReader({ mode: "${options.mode}" }) is not supported here: use the default reader`);
      }
      return new ReadableStreamDefaultReader(this);
    }
    tee() {
      const reader = this.getReader();
      const branches = [];
      let reading = false;
      let cancelled = 0;
      const pull = async () => {
        if (reading) return;
        reading = true;
        try {
          const { value, done } = await reader.read();
          for (const c of branches) {
            if (done) try { c.close(); } catch {}
            else try { c.enqueue(value); } catch {}
          }
        } catch (e) {
          for (const c of branches) c.error(e);
        }
        reading = false;
      };
      const branch = () => new ReadableStream({
        start(c) { branches.push(c); },
        pull,
        cancel: (reason) => { if (++cancelled === 2) return reader.cancel(reason); },
      });
      return [branch(), branch()];
    }
    async pipeTo(destination, options = {}) {
      const writer = destination.getWriter();
      const reader = this.getReader();
      const signal = options.signal;
      const stop = (reason) => Promise.all([
        options.preventCancel ? undefined : reader.cancel(reason).catch(() => {}),
        options.preventAbort ? undefined : writer.abort(reason).catch(() => {}),
      ]);
      try {
        for (;;) {
          if (signal && signal.aborted) {
            await stop(signal.reason);
            throw signal.reason;
          }
          let next;
          try {
            next = await reader.read();
          } catch (e) {
            if (!options.preventAbort) await writer.abort(e).catch(() => {});
            throw e;
          }
          if (next.done) break;
          try {
            await writer.ready;
            await writer.write(next.value);
          } catch (e) {
            if (!options.preventCancel) await reader.cancel(e).catch(() => {});
            throw e;
          }
        }
        if (!options.preventClose) await writer.close();
      } finally {
        reader.releaseLock();
        writer.releaseLock();
      }
    }
    pipeThrough(transform, options = {}) {
      if (!transform || !(transform.readable instanceof ReadableStream) || !(transform.writable instanceof WritableStream)) {
        throw new TypeError("pipeThrough needs { writable, readable }, e.g. a TransformStream");
      }
      this.pipeTo(transform.writable, options).catch(() => {});
      return transform.readable;
    }
    values(options = {}) {
      const reader = this.getReader();
      const preventCancel = !!(options && options.preventCancel);
      return {
        next: async () => {
          const result = await reader.read();
          if (result.done) reader.releaseLock();
          return result;
        },
        return: async (value) => {
          if (!preventCancel) await reader.cancel(value);
          reader.releaseLock();
          return { value, done: true };
        },
        [Symbol.asyncIterator]() { return this; },
      };
    }
    [Symbol.asyncIterator](options) {
      return this.values(options);
    }
    static from(iterable) {
      if (iterable instanceof ReadableStream) return iterable;
      const iterator = iterable && typeof iterable[Symbol.asyncIterator] === "function"
        ? iterable[Symbol.asyncIterator]()
        : iterable && typeof iterable[Symbol.iterator] === "function"
          ? iterable[Symbol.iterator]()
          : null;
      if (!iterator) throw new TypeError("ReadableStream.from needs an iterable or async iterable");
      return new ReadableStream({
        async pull(c) {
          const { value, done } = await iterator.next();
          if (done) c.close();
          else c.enqueue(await value);
        },
        async cancel(reason) {
          if (typeof iterator.return === "function") await iterator.return(reason);
        },
      }, { highWaterMark: 0 });
    }
    get [Symbol.toStringTag]() { return "ReadableStream"; }
  }

  // --- WritableStream

  const writableState = new WeakMap();

  class WritableStreamDefaultController {
    #s;
    constructor(key, s) {
      if (key !== internals) throw new TypeError("WritableStreamDefaultController is made by WritableStream");
      this.#s = s;
    }
    get signal() { return this.#s.abort.signal; }
    error(reason) { errorWritable(this.#s, reason); }
  }

  function errorWritable(s, reason) {
    if (s.state !== "writable") return;
    s.state = "errored";
    s.storedError = reason;
    s.closed.reject(reason);
    s.ready.reject(reason);
  }

  // Writes and the close go through one chain, in order, after start.
  function enqueueWrite(s, work) {
    s.pending += 1;
    if (s.pending >= s.hwm && s.readyResolved) {
      s.ready = deferred();
      s.readyResolved = false;
    }
    const step = s.chain.then(() => {
      if (s.state === "errored") throw s.storedError;
      return work();
    });
    s.chain = step.then(
      () => {
        s.pending -= 1;
        if (s.pending < s.hwm && !s.readyResolved) {
          s.readyResolved = true;
          s.ready.resolve(undefined);
        }
      },
      (e) => {
        s.pending -= 1;
        errorWritable(s, e);
      },
    );
    return step;
  }

  class WritableStreamDefaultWriter {
    #s;
    constructor(stream) {
      const s = writableState.get(stream);
      if (!s) throw new TypeError("WritableStreamDefaultWriter needs a WritableStream");
      if (s.writer) throw new TypeError("the stream is locked to another writer");
      s.writer = this;
      this.#s = s;
    }
    get closed() { return this.#s ? this.#s.closed.promise : Promise.reject(new TypeError("the writer was released")); }
    get ready() { return this.#s ? this.#s.ready.promise : Promise.reject(new TypeError("the writer was released")); }
    get desiredSize() {
      const s = this.#s;
      if (!s) throw new TypeError("the writer was released");
      return s.state === "errored" ? null : s.state === "closed" ? 0 : s.hwm - s.pending;
    }
    write(chunk) {
      const s = this.#s;
      if (!s) return Promise.reject(new TypeError("the writer was released"));
      if (s.state === "errored") return Promise.reject(s.storedError);
      if (s.closing || s.state === "closed") return Promise.reject(new TypeError("the stream is closing or closed"));
      return enqueueWrite(s, () => call(s.sink, "write", [chunk, s.controller]));
    }
    close() {
      const s = this.#s;
      if (!s) return Promise.reject(new TypeError("the writer was released"));
      if (s.closing || s.state !== "writable") return Promise.reject(new TypeError("the stream is closing, closed or errored"));
      s.closing = true;
      return enqueueWrite(s, () => call(s.sink, "close", []).then(() => {
        s.state = "closed";
        s.closed.resolve(undefined);
      }));
    }
    abort(reason) {
      const s = this.#s;
      if (!s) return Promise.reject(new TypeError("the writer was released"));
      return abortWritable(s, reason);
    }
    releaseLock() {
      if (!this.#s) return;
      this.#s.writer = null;
      this.#s = null;
    }
  }

  function abortWritable(s, reason) {
    if (s.state !== "writable") return resolved(undefined);
    s.abort.abort(reason);
    errorWritable(s, reason);
    return call(s.sink, "abort", [reason]).then(() => undefined);
  }

  class WritableStream {
    constructor(sink = {}, strategy = {}) {
      if (sink === null || typeof sink !== "object") sink = {};
      const s = {
        sink,
        state: "writable",
        hwm: highWaterMark(strategy, 1),
        pending: 0,
        closing: false,
        storedError: undefined,
        writer: null,
        closed: deferred(),
        ready: deferred(),
        readyResolved: true,
        abort: new AbortController(),
        chain: null,
      };
      s.ready.resolve(undefined);
      s.controller = new WritableStreamDefaultController(internals, s);
      s.chain = call(sink, "start", [s.controller]).catch((e) => errorWritable(s, e));
      writableState.set(this, s);
    }
    get locked() { return writableState.get(this).writer !== null; }
    getWriter() { return new WritableStreamDefaultWriter(this); }
    abort(reason) {
      const s = writableState.get(this);
      if (s.writer) return Promise.reject(new TypeError("the stream is locked to a writer"));
      return abortWritable(s, reason);
    }
    close() {
      const s = writableState.get(this);
      if (s.writer) return Promise.reject(new TypeError("the stream is locked to a writer"));
      const writer = this.getWriter();
      return writer.close().finally(() => writer.releaseLock());
    }
    get [Symbol.toStringTag]() { return "WritableStream"; }
  }

  // --- TransformStream

  class TransformStream {
    #readable;
    #writable;
    constructor(transformer = {}, writableStrategy = {}, readableStrategy = {}) {
      if (transformer === null || typeof transformer !== "object") transformer = {};
      if (transformer.readableType !== undefined || transformer.writableType !== undefined) {
        throw new RangeError("TransformStream readableType/writableType are not supported");
      }
      let readableController;
      let backpressure = deferred();
      const started = deferred();
      let writableController;
      let cancelled = null;
      this.#readable = new ReadableStream({
        start(c) { readableController = c; },
        pull() { backpressure.resolve(undefined); },
        cancel(reason) {
          // The writable side fails from now on, and a write waiting for
          // room is released into that failure.
          cancelled = reason === undefined ? new TypeError("the readable side was cancelled") : reason;
          if (writableController) writableController.error(cancelled);
          backpressure.resolve(undefined);
          return call(transformer, "cancel", [reason]);
        },
      }, { highWaterMark: highWaterMark(readableStrategy, 0), size: readableStrategy && readableStrategy.size });
      const controller = {
        get desiredSize() { return readableController.desiredSize; },
        enqueue(chunk) {
          readableController.enqueue(chunk);
          if (readableController.desiredSize <= 0) backpressure = deferred();
        },
        error(reason) { readableController.error(reason); },
        terminate() { try { readableController.close(); } catch {} },
      };
      this.#writable = new WritableStream({
        start: (c) => {
          writableController = c;
          return started.promise;
        },
        async write(chunk) {
          if (readableController.desiredSize <= 0) await backpressure.promise;
          if (cancelled !== null) throw cancelled;
          if (typeof transformer.transform === "function") await transformer.transform(chunk, controller);
          else controller.enqueue(chunk);
        },
        async close() {
          await call(transformer, "flush", [controller]);
          controller.terminate();
        },
        abort(reason) { readableController.error(reason); },
      }, writableStrategy);
      call(transformer, "start", [controller]).then(() => started.resolve(undefined), (e) => {
        readableController.error(e);
        started.reject(e);
      });
    }
    get readable() { return this.#readable; }
    get writable() { return this.#writable; }
    get [Symbol.toStringTag]() { return "TransformStream"; }
  }

  class CountQueuingStrategy {
    constructor({ highWaterMark }) { this.highWaterMark = Number(highWaterMark); }
    size() { return 1; }
  }
  class ByteLengthQueuingStrategy {
    constructor({ highWaterMark }) { this.highWaterMark = Number(highWaterMark); }
    size(chunk) { return chunk.byteLength; }
  }

  class TextEncoderStream extends TransformStream {
    constructor() {
      const encoder = new TextEncoder();
      super({ transform(chunk, c) { const bytes = encoder.encode(String(chunk)); if (bytes.length) c.enqueue(bytes); } });
    }
    get encoding() { return "utf-8"; }
  }
  class TextDecoderStream extends TransformStream {
    #decoder;
    constructor(label = "utf-8", options = {}) {
      const decoder = new TextDecoder(label, options);
      super({
        transform(chunk, c) { const text = decoder.decode(chunk, { stream: true }); if (text) c.enqueue(text); },
        flush(c) { const text = decoder.decode(); if (text) c.enqueue(text); },
      });
      this.#decoder = decoder;
    }
    get encoding() { return this.#decoder.encoding; }
    get fatal() { return this.#decoder.fatal; }
    get ignoreBOM() { return this.#decoder.ignoreBOM; }
  }

  for (const [name, value] of Object.entries({
    ReadableStream, ReadableStreamDefaultReader, ReadableStreamDefaultController,
    WritableStream, WritableStreamDefaultWriter, WritableStreamDefaultController,
    TransformStream, CountQueuingStrategy, ByteLengthQueuingStrategy, TextEncoderStream, TextDecoderStream,
  })) define(name, value);

  // --- for bodies

  internals.isReadable = (value) => readableState.has(value);
  // A stream of one chunk (a body that is whole bytes).
  internals.streamOf = (bytes) => new ReadableStream({
    start(c) {
      if (bytes && bytes.length) c.enqueue(bytes.slice());
      c.close();
    },
  });
  // Every chunk of `stream` (Uint8Array or ArrayBuffer views) as one
  // Uint8Array.
  internals.readAll = async (stream, what) => {
    const reader = stream.getReader();
    const parts = [];
    let length = 0;
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      const bytes = toBytes(value, `${what} chunk`);
      parts.push(bytes);
      length += bytes.length;
    }
    reader.releaseLock();
    const out = new Uint8Array(length);
    let at = 0;
    for (const p of parts) {
      out.set(p, at);
      at += p.length;
    }
    return out;
  };
});
