// Prelude, part 3: Web Crypto's `crypto.subtle`, the subset webhook
// verifiers written for Workers and Deno call.
// Owns: CryptoKey and internals.subtle (runtime.js puts it on `crypto`):
// digest (SHA-1/256/384/512); importKey/exportKey of HMAC and AES-GCM
// secrets (raw, jwk), PBKDF2 and HKDF base keys (raw), Ed25519 and ECDSA
// P-256 public keys (raw, jwk; spki for P-256); generateKey (HMAC,
// AES-GCM); sign/verify (HMAC), verify (Ed25519, ECDSA); encrypt/decrypt
// (AES-GCM); deriveBits/deriveKey (PBKDF2, HKDF). The bytes are handled
// by Rust natives (RustCrypto, ed25519-dalek). What is not here throws
// NotSupportedError naming the operation.
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
      `crypto.subtle ${what} is not supported here: digest, HMAC, AES-GCM, PBKDF2, HKDF, and Ed25519 and ECDSA P-256 verification are`,
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
      if (name === "AES-GCM") {
        let bytes;
        if (format === "raw") bytes = toBytes(keyData, "importKey raw key");
        else if (format === "jwk" && keyData && keyData.kty === "oct") bytes = base64url.decode(keyData.k);
        else throw notSupported(`importKey("${format}") of an AES-GCM key (use "raw" or an "oct" JWK)`);
        if (bytes.length !== 16 && bytes.length !== 32) throw new Exception("AES-GCM keys are 128 or 256 bits", "DataError");
        return makeKey("secret", { name: "AES-GCM", length: bytes.length * 8 }, extractable, usages, bytes);
      }
      if (name === "PBKDF2" || name === "HKDF") {
        if (format !== "raw") throw notSupported(`importKey("${format}") of a ${name} key (use "raw")`);
        if (extractable) throw new Exception(`${name} keys cannot be extractable`, "SyntaxError");
        return makeKey("secret", { name }, false, usages, toBytes(keyData, "importKey raw key"));
      }
      if (name === "ECDSA") {
        const curve = String(algorithm && algorithm.namedCurve);
        if (curve !== "P-256") throw notSupported(`ECDSA on ${curve} (P-256 is)`);
        let bytes;
        if (format === "raw" || format === "spki") bytes = native.subtleP256Public(format, toBytes(keyData, `importKey ${format} key`));
        else if (format === "jwk" && keyData && keyData.kty === "EC" && keyData.crv === "P-256" && !keyData.d) {
          const x = base64url.decode(keyData.x);
          const y = base64url.decode(keyData.y);
          const point = new Uint8Array(1 + x.length + y.length);
          point[0] = 4;
          point.set(x, 1);
          point.set(y, 1 + x.length);
          bytes = native.subtleP256Public("raw", point);
        } else throw notSupported(`importKey("${format}") of an ECDSA key (public keys: "raw", "spki" or an EC JWK)`);
        return makeKey("public", { name: "ECDSA", namedCurve: "P-256" }, extractable, usages, bytes);
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
      if (format === "jwk" && key.algorithm.name === "AES-GCM") {
        const alg = `A${key.algorithm.length}GCM`;
        return { kty: "oct", k: base64url.encode(bytes), alg, ext: key.extractable, key_ops: [...key.usages] };
      }
      if (format === "jwk" && key.algorithm.name === "ECDSA") {
        return {
          kty: "EC",
          crv: "P-256",
          x: base64url.encode(bytes.slice(1, 33)),
          y: base64url.encode(bytes.slice(33, 65)),
          ext: key.extractable,
          key_ops: [...key.usages],
        };
      }
      if (format === "jwk" && key.algorithm.name === "Ed25519") {
        return { kty: "OKP", crv: "Ed25519", x: base64url.encode(bytes), ext: key.extractable, key_ops: [...key.usages] };
      }
      throw notSupported(`exportKey("${format}")`);
    },

    async generateKey(algorithm, extractable, usages = []) {
      if (algorithmName(algorithm) === "AES-GCM") {
        const length = algorithm.length;
        if (length !== 128 && length !== 256) throw new Exception("AES-GCM keys are 128 or 256 bits", "OperationError");
        return makeKey("secret", { name: "AES-GCM", length }, extractable, usages, native.randomBytes(length / 8));
      }
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
      if (name === "ECDSA") {
        const bytes = keyBytes(key, "verify", "ECDSA");
        const hash = hashName(algorithm.hash, "verify ECDSA");
        return native.subtleP256Verify(hash, bytes, toBytes(signature, "verify signature"), toBytes(data, "verify data"));
      }
      throw notSupported(`verify with ${name}`);
    },

    async encrypt(algorithm, key, data) {
      return aesGcm(true, algorithm, key, data);
    },

    async decrypt(algorithm, key, data) {
      return aesGcm(false, algorithm, key, data);
    },

    async deriveBits(algorithm, baseKey, length) {
      return copy(derive(algorithm, baseKey, length, "deriveBits"));
    },

    async deriveKey(algorithm, baseKey, derivedKeyAlgorithm, extractable, usages = []) {
      const target = algorithmName(derivedKeyAlgorithm);
      let length;
      if (target === "AES-GCM") length = derivedKeyAlgorithm.length;
      else if (target === "HMAC") {
        length = derivedKeyAlgorithm.length ?? HASHES[hashName(derivedKeyAlgorithm.hash, "deriveKey HMAC")] * 8;
      } else throw notSupported(`deriveKey of ${target} keys (AES-GCM and HMAC are)`);
      const bytes = derive(algorithm, baseKey, length, "deriveKey");
      return subtle.importKey("raw", bytes, derivedKeyAlgorithm, extractable, usages);
    },
  };

  // AES-GCM with a 96-bit iv and a 128-bit tag appended to the ciphertext.
  function aesGcm(encrypt, algorithm, key, data) {
    const what = encrypt ? "encrypt" : "decrypt";
    if (algorithmName(algorithm) !== "AES-GCM") throw notSupported(`${what} with ${algorithmName(algorithm)}`);
    if ((algorithm.tagLength ?? 128) !== 128) throw notSupported(`${what} with a tagLength other than 128`);
    const bytes = keyBytes(key, what, "AES-GCM");
    const iv = toBytes(algorithm.iv, `${what} iv`);
    const aad = algorithm.additionalData === undefined ? new Uint8Array(0) : toBytes(algorithm.additionalData, `${what} additionalData`);
    try {
      return copy(native.subtleAesGcm(encrypt, bytes, iv, aad, toBytes(data, `${what} data`)));
    } catch (e) {
      throw new Exception(e.message, "OperationError");
    }
  }

  // PBKDF2 or HKDF output of `length` bits from a base key.
  function derive(algorithm, baseKey, length, what) {
    const name = algorithmName(algorithm);
    if (name !== "PBKDF2" && name !== "HKDF") throw notSupported(`${what} with ${name} (PBKDF2 and HKDF are)`);
    const bytes = keyBytes(baseKey, what, name);
    const hash = hashName(algorithm.hash, `${what} ${name}`);
    const salt = toBytes(algorithm.salt, `${what} salt`);
    try {
      if (name === "PBKDF2") return native.subtlePbkdf2(hash, bytes, salt, Number(algorithm.iterations) >>> 0, Number(length) >>> 0);
      return native.subtleHkdf(hash, bytes, salt, toBytes(algorithm.info, `${what} info`), Number(length) >>> 0);
    } catch (e) {
      throw new Exception(e.message, "OperationError");
    }
  }

  for (const what of ["wrapKey", "unwrapKey"]) {
    subtle[what] = async () => {
      throw notSupported(what);
    };
  }
  internals.subtle = Object.freeze(subtle);
});
