// Prelude, part 3: Web Crypto's `crypto.subtle`, the subset webhook
// verifiers written for Workers and Deno call.
// Owns: CryptoKey and internals.subtle (runtime.js puts it on `crypto`):
// digest (SHA-1/256/384/512), importKey/exportKey (raw and jwk) of HMAC
// secrets and Ed25519 public keys, generateKey (HMAC), sign/verify (HMAC),
// verify (Ed25519). The bytes are hashed and checked by Rust natives
// (RustCrypto, ed25519-dalek). What is not here throws NotSupportedError
// naming the operation.
(function (native, internals) {
  "use strict";

  const { toBytes, define } = internals;

  class DOMException extends Error {
    constructor(message, name = "Error") {
      super(message);
      this.name = name;
    }
  }
  if (typeof globalThis.DOMException !== "function") define("DOMException", DOMException);
  const Exception = globalThis.DOMException;

  const notSupported = (what) =>
    new Exception(
      `crypto.subtle ${what} is not supported here: digest, HMAC (sign, verify, importKey, exportKey, generateKey) and Ed25519 verify are`,
      "NotSupportedError",
    );
  const HASHES = { "SHA-1": 64, "SHA-256": 64, "SHA-384": 128, "SHA-512": 128 };
  const hashName = (hash, what) => {
    const name = String(typeof hash === "object" && hash !== null ? hash.name : hash).toUpperCase();
    if (!(name in HASHES)) throw new TypeError(`${what}: unknown hash \`${name}\`; use SHA-1, SHA-256, SHA-384 or SHA-512`);
    return name;
  };
  const algorithmName = (algorithm) =>
    String(typeof algorithm === "object" && algorithm !== null ? algorithm.name : algorithm).toUpperCase();
  const copy = (bytes) => bytes.slice().buffer;
  const base64url = {
    encode: (bytes) => btoa(String.fromCharCode(...bytes)).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, ""),
    decode: (text) => {
      const b64 = String(text).replace(/-/g, "+").replace(/_/g, "/");
      return Uint8Array.from(atob(b64 + "===".slice((b64.length + 3) % 4)), (c) => c.charCodeAt(0));
    },
  };

  // The key material stays out of reach of the script: only the natives see it.
  const material = new WeakMap();
  class CryptoKey {
    constructor() {
      throw new TypeError("CryptoKey is made by crypto.subtle.importKey or generateKey");
    }
  }
  define("CryptoKey", CryptoKey);
  function makeKey(type, algorithm, extractable, usages, bytes) {
    const key = Object.create(CryptoKey.prototype, {
      type: { value: type, enumerable: true },
      algorithm: { value: Object.freeze(algorithm), enumerable: true },
      extractable: { value: !!extractable, enumerable: true },
      usages: { value: Object.freeze([...usages]), enumerable: true },
    });
    material.set(key, bytes.slice());
    return Object.freeze(key);
  }
  const keyBytes = (key, usage, name) => {
    const bytes = material.get(key);
    if (!bytes) throw new TypeError("not a CryptoKey");
    if (key.algorithm.name !== name) {
      throw new Exception(`the key is a ${key.algorithm.name} key, not ${name}`, "InvalidAccessError");
    }
    if (!key.usages.includes(usage)) {
      throw new Exception(`the key's usages (${key.usages.join(", ")}) do not include \`${usage}\``, "InvalidAccessError");
    }
    return bytes;
  };

  const subtle = {
    async digest(algorithm, data) {
      return copy(native.subtleDigest(hashName(algorithm, "digest"), toBytes(data, "digest data")));
    },

    async importKey(format, keyData, algorithm, extractable, usages = []) {
      const name = algorithmName(algorithm);
      if (name === "HMAC") {
        const hash = hashName(algorithm.hash, "importKey HMAC");
        let bytes;
        if (format === "raw") bytes = toBytes(keyData, "importKey raw key");
        else if (format === "jwk" && keyData && keyData.kty === "oct") bytes = base64url.decode(keyData.k);
        else throw notSupported(`importKey("${format}") of an HMAC key (use "raw" or an "oct" JWK)`);
        return makeKey("secret", { name: "HMAC", hash: { name: hash }, length: bytes.length * 8 }, extractable, usages, bytes);
      }
      if (name === "ED25519") {
        let bytes;
        if (format === "raw") bytes = toBytes(keyData, "importKey raw key");
        else if (format === "jwk" && keyData && keyData.kty === "OKP" && keyData.crv === "Ed25519" && !keyData.d) {
          bytes = base64url.decode(keyData.x);
        } else throw notSupported(`importKey("${format}") of an Ed25519 key (public keys: "raw" or an OKP JWK)`);
        if (bytes.length !== 32) throw new Exception("an Ed25519 public key is 32 bytes", "DataError");
        return makeKey("public", { name: "Ed25519" }, extractable, usages, bytes);
      }
      throw notSupported(`importKey of ${name} keys`);
    },

    async exportKey(format, key) {
      const bytes = material.get(key);
      if (!bytes) throw new TypeError("not a CryptoKey");
      if (!key.extractable && key.type === "secret") {
        throw new Exception("the key was imported or made as not extractable", "InvalidAccessError");
      }
      if (format === "raw") return copy(bytes);
      if (format === "jwk" && key.algorithm.name === "HMAC") {
        const alg = `HS${key.algorithm.hash.name.slice(4)}`;
        return { kty: "oct", k: base64url.encode(bytes), alg, ext: key.extractable, key_ops: [...key.usages] };
      }
      if (format === "jwk" && key.algorithm.name === "Ed25519") {
        return { kty: "OKP", crv: "Ed25519", x: base64url.encode(bytes), ext: key.extractable, key_ops: [...key.usages] };
      }
      throw notSupported(`exportKey("${format}")`);
    },

    async generateKey(algorithm, extractable, usages = []) {
      if (algorithmName(algorithm) !== "HMAC") throw notSupported(`generateKey of ${algorithmName(algorithm)} keys`);
      const hash = hashName(algorithm.hash, "generateKey HMAC");
      const length = algorithm.length ?? HASHES[hash] * 8;
      if (length % 8 !== 0 || length <= 0 || length > 4096) throw new Exception("give a length of whole bytes, up to 4096 bits", "OperationError");
      const bytes = native.randomBytes(length / 8);
      return makeKey("secret", { name: "HMAC", hash: { name: hash }, length }, extractable, usages, bytes);
    },

    async sign(algorithm, key, data) {
      if (algorithmName(algorithm) !== "HMAC") throw notSupported(`sign with ${algorithmName(algorithm)}`);
      const bytes = keyBytes(key, "sign", "HMAC");
      return copy(native.subtleHmacSign(key.algorithm.hash.name, bytes, toBytes(data, "sign data")));
    },

    async verify(algorithm, key, signature, data) {
      const name = algorithmName(algorithm);
      if (name === "HMAC") {
        const bytes = keyBytes(key, "verify", "HMAC");
        return native.subtleHmacVerify(key.algorithm.hash.name, bytes, toBytes(signature, "verify signature"), toBytes(data, "verify data"));
      }
      if (name === "ED25519") {
        const bytes = keyBytes(key, "verify", "Ed25519");
        return native.subtleEd25519Verify(bytes, toBytes(signature, "verify signature"), toBytes(data, "verify data"));
      }
      throw notSupported(`verify with ${name}`);
    },
  };
  for (const what of ["encrypt", "decrypt", "deriveBits", "deriveKey", "wrapKey", "unwrapKey"]) {
    subtle[what] = async () => {
      throw notSupported(what);
    };
  }
  internals.subtle = Object.freeze(subtle);
});
