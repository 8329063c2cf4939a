// Prelude, part 3: Web Crypto's `crypto.subtle`, the subset webhook
// verifiers written for Workers and Deno call.
// Owns: CryptoKey and internals.subtle (runtime.js puts it on `crypto`):
// digest (SHA-1/256/384/512); importKey/exportKey of HMAC and AES-GCM
// secrets (raw, jwk), PBKDF2 and HKDF base keys (raw), RSA keys
// (RSASSA-PKCS1-v1_5, RSA-PSS: spki, pkcs8, jwk), ECDSA P-256 and
// Ed25519 keys (public: raw, spki, jwk; private: pkcs8, jwk);
// generateKey (HMAC, AES-GCM, RSA, ECDSA P-256, Ed25519); sign/verify
// (HMAC, RSA, ECDSA, Ed25519); encrypt/decrypt (AES-GCM);
// deriveBits/deriveKey (PBKDF2, HKDF). The bytes are handled by Rust
// natives (RustCrypto, ed25519-dalek). What is not here throws
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
      `crypto.subtle ${what} is not supported here: digest, HMAC, AES-GCM, PBKDF2, HKDF, RSASSA-PKCS1-v1_5, RSA-PSS, ECDSA P-256 and Ed25519 are`,
      "NotSupportedError",
    );
  const HASHES = { "SHA-1": 64, "SHA-256": 64, "SHA-384": 128, "SHA-512": 128 };
  const hashName = (hash, what) => {
    const name = String(typeof hash === "object" && hash !== null ? hash.name : hash).toUpperCase();
    if (!(name in HASHES)) throw new TypeError(`${what}: unknown hash \`${name}\`; use SHA-1, SHA-256, SHA-384 or SHA-512`);
    return name;
  };
  const CANONICAL = { "RSASSA-PKCS1-V1_5": "RSASSA-PKCS1-v1_5", ED25519: "Ed25519" };
  const algorithmName = (algorithm) => {
    const name = String(typeof algorithm === "object" && algorithm !== null ? algorithm.name : algorithm).toUpperCase();
    return CANONICAL[name] ?? name;
  };
  const isRsa = (name) => name === "RSASSA-PKCS1-v1_5" || name === "RSA-PSS";
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
      algorithm: { value: Object.freeze({ ...algorithm, ...(algorithm.hash ? { hash: Object.freeze({ ...algorithm.hash }) } : {}) }), enumerable: true },
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

  const concat = (a, b) => {
    const out = new Uint8Array(a.length + b.length);
    out.set(a, 0);
    out.set(b, a.length);
    return out;
  };
  const bitLength = (bytes) => {
    let i = 0;
    while (i < bytes.length && bytes[i] === 0) i++;
    return i === bytes.length ? 0 : (bytes.length - i - 1) * 8 + (32 - Math.clz32(bytes[i]));
  };
  // A key's usages must fit its type (a public key only verifies).
  const checkedUsages = (usages, allowed) => {
    const bad = [...usages].filter((u) => !allowed.includes(u));
    if (bad.length) throw new Exception(`this key cannot be used to ${bad.join(", ")}`, "SyntaxError");
    return usages;
  };
  const saltLength = (algorithm, name) => {
    if (name !== "RSA-PSS") return 0;
    const salt = Number(algorithm.saltLength);
    if (!Number.isInteger(salt) || salt < 0) throw new TypeError("RSA-PSS needs saltLength (bytes; usually the hash's length, e.g. 32)");
    return salt;
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
      if (name === "Ed25519") {
        let bytes;
        if (format === "pkcs8" || (format === "jwk" && keyData && keyData.kty === "OKP" && keyData.crv === "Ed25519" && keyData.d)) {
          const [seed, publicKey] = format === "pkcs8"
            ? native.subtleEd25519Private("pkcs8", toBytes(keyData, "importKey pkcs8 key"))
            : native.subtleEd25519Private("raw", base64url.decode(keyData.d));
          if (format === "jwk" && keyData.x !== undefined && base64url.encode(publicKey) !== keyData.x) {
            throw new Exception("the JWK's x is not the public key of its d", "DataError");
          }
          return makeKey("private", { name: "Ed25519" }, extractable, checkedUsages(usages, ["sign"]), concat(seed, publicKey));
        }
        if (format === "raw" || format === "spki") bytes = toBytes(keyData, `importKey ${format} key`);
        else if (format === "jwk" && keyData && keyData.kty === "OKP" && keyData.crv === "Ed25519") {
          bytes = base64url.decode(keyData.x);
        } else throw notSupported(`importKey("${format}") of an Ed25519 key`);
        if (format === "spki") {
          // The SPKI of an Ed25519 key is a fixed 12-byte prefix and the key.
          if (bytes.length !== 44 || base64url.encode(bytes.slice(0, 12)) !== "MCowBQYDK2VwAyEA") {
            throw new Exception("not an Ed25519 SPKI key", "DataError");
          }
          bytes = bytes.slice(12);
        }
        if (bytes.length !== 32) throw new Exception("an Ed25519 public key is 32 bytes", "DataError");
        return makeKey("public", { name: "Ed25519" }, extractable, checkedUsages(usages, ["verify"]), bytes);
      }
      if (isRsa(name)) {
        const hash = hashName(algorithm.hash, `importKey ${name}`);
        let parts;
        if (format === "spki" || format === "pkcs8") parts = native.subtleRsaImport(format, toBytes(keyData, `importKey ${format} key`));
        else if (format === "jwk" && keyData && keyData.kty === "RSA") {
          const fields = keyData.d ? ["n", "e", "d", "p", "q"] : ["n", "e"];
          parts = native.subtleRsaFromParts(fields.map((f) => {
            if (typeof keyData[f] !== "string") throw new Exception(`the RSA JWK has no \`${f}\``, "DataError");
            return base64url.decode(keyData[f]);
          }));
        } else throw notSupported(`importKey("${format}") of an RSA key (spki, pkcs8 or an RSA JWK are)`);
        const [der, n, e] = parts;
        const type = parts.length > 3 ? "private" : "public";
        const algo = { name, modulusLength: bitLength(n), publicExponent: e, hash: { name: hash } };
        return makeKey(type, algo, extractable, checkedUsages(usages, type === "private" ? ["sign"] : ["verify"]), der);
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
        if (format === "pkcs8" || (format === "jwk" && keyData && keyData.kty === "EC" && keyData.d)) {
          const [scalar, point] = format === "pkcs8"
            ? native.subtleP256Private("pkcs8", toBytes(keyData, "importKey pkcs8 key"))
            : native.subtleP256Private("raw", base64url.decode(keyData.d));
          if (format === "jwk" && (base64url.encode(point.slice(1, 33)) !== keyData.x || base64url.encode(point.slice(33)) !== keyData.y)) {
            throw new Exception("the JWK's x and y are not the public key of its d", "DataError");
          }
          const algo = { name: "ECDSA", namedCurve: "P-256" };
          return makeKey("private", algo, extractable, checkedUsages(usages, ["sign"]), concat(scalar, point));
        }
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
        } else throw notSupported(`importKey("${format}") of an ECDSA key (raw, spki, pkcs8 or an EC JWK)`);
        return makeKey("public", { name: "ECDSA", namedCurve: "P-256" }, extractable, checkedUsages(usages, ["verify"]), bytes);
      }
      throw notSupported(`importKey of ${name} keys`);
    },

    async exportKey(format, key) {
      const bytes = material.get(key);
      if (!bytes) throw new TypeError("not a CryptoKey");
      if (!key.extractable && key.type !== "public") {
        throw new Exception("the key was imported or made as not extractable", "InvalidAccessError");
      }
      const name = key.algorithm.name;
      const jwk = (fields) => ({ ...fields, ext: key.extractable, key_ops: [...key.usages] });
      if (isRsa(name)) {
        if (format === "spki" && key.type === "public") return copy(bytes);
        if (format === "pkcs8" && key.type === "private") return copy(bytes);
        if (format === "jwk") {
          const parts = native.subtleRsaImport(key.type === "private" ? "pkcs8" : "spki", bytes).slice(1);
          const names = ["n", "e", "d", "p", "q", "dp", "dq", "qi"];
          const fields = { kty: "RSA", alg: `${name === "RSA-PSS" ? "PS" : "RS"}${key.algorithm.hash.name.slice(4)}` };
          parts.forEach((part, i) => { fields[names[i]] = base64url.encode(part); });
          return jwk(fields);
        }
        throw notSupported(`exportKey("${format}") of an RSA ${key.type} key`);
      }
      if (name === "ECDSA" && key.type === "private") {
        if (format === "pkcs8") return copy(native.subtleP256Export("pkcs8", bytes.slice(0, 32)));
        if (format === "jwk") {
          return jwk({ kty: "EC", crv: "P-256", d: base64url.encode(bytes.slice(0, 32)), x: base64url.encode(bytes.slice(33, 65)), y: base64url.encode(bytes.slice(65, 97)) });
        }
        throw notSupported(`exportKey("${format}") of an ECDSA private key (pkcs8 and jwk are)`);
      }
      if (name === "Ed25519" && key.type === "private") {
        if (format === "pkcs8") return copy(native.subtleEd25519Pkcs8(bytes.slice(0, 32)));
        if (format === "jwk") return jwk({ kty: "OKP", crv: "Ed25519", d: base64url.encode(bytes.slice(0, 32)), x: base64url.encode(bytes.slice(32)) });
        throw notSupported(`exportKey("${format}") of an Ed25519 private key (pkcs8 and jwk are)`);
      }
      if (format === "raw") return copy(bytes);
      if (format === "spki" && name === "ECDSA") return copy(native.subtleP256Export("spki", bytes));
      if (format === "spki" && name === "Ed25519") return copy(concat(base64url.decode("MCowBQYDK2VwAyEA"), bytes));
      if (format === "jwk" && name === "HMAC") {
        return jwk({ kty: "oct", k: base64url.encode(bytes), alg: `HS${key.algorithm.hash.name.slice(4)}` });
      }
      if (format === "jwk" && name === "AES-GCM") {
        return jwk({ kty: "oct", k: base64url.encode(bytes), alg: `A${key.algorithm.length}GCM` });
      }
      if (format === "jwk" && name === "ECDSA") {
        return jwk({ kty: "EC", crv: "P-256", x: base64url.encode(bytes.slice(1, 33)), y: base64url.encode(bytes.slice(33, 65)) });
      }
      if (format === "jwk" && name === "Ed25519") return jwk({ kty: "OKP", crv: "Ed25519", x: base64url.encode(bytes) });
      throw notSupported(`exportKey("${format}") of a ${name} key`);
    },

    async generateKey(algorithm, extractable, usages = []) {
      const name = algorithmName(algorithm);
      const pair = (algo, privateBytes, publicBytes) => ({
        publicKey: makeKey("public", algo, true, checkedUsages(usages, ["sign", "verify"]).filter((u) => u === "verify"), publicBytes),
        privateKey: makeKey("private", algo, extractable, usages.filter((u) => u === "sign"), privateBytes),
      });
      if (isRsa(name)) {
        const hash = hashName(algorithm.hash, `generateKey ${name}`);
        const exponent = toBytes(algorithm.publicExponent, "generateKey publicExponent");
        let keys;
        try {
          keys = native.subtleRsaGenerate(Number(algorithm.modulusLength) >>> 0, exponent);
        } catch (e) {
          throw new Exception(e.message, "OperationError");
        }
        const [pkcs8, spki] = keys;
        const algo = { name, modulusLength: Number(algorithm.modulusLength), publicExponent: exponent.slice(), hash: { name: hash } };
        return pair(algo, pkcs8, spki);
      }
      if (name === "ECDSA") {
        if (String(algorithm.namedCurve) !== "P-256") throw notSupported(`ECDSA on ${algorithm.namedCurve} (P-256 is)`);
        const [scalar, point] = native.subtleP256Generate();
        return pair({ name: "ECDSA", namedCurve: "P-256" }, concat(scalar, point), point);
      }
      if (name === "Ed25519") {
        const [seed, publicKey] = native.subtleEd25519Generate();
        return pair({ name: "Ed25519" }, concat(seed, publicKey), publicKey);
      }
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
      const name = algorithmName(algorithm);
      const input = toBytes(data, "sign data");
      if (name === "HMAC") {
        const bytes = keyBytes(key, "sign", "HMAC");
        return copy(native.subtleHmacSign(key.algorithm.hash.name, bytes, input));
      }
      if (isRsa(name)) {
        const bytes = keyBytes(key, "sign", name);
        return copy(native.subtleRsaSign(name === "RSA-PSS", saltLength(algorithm, name), key.algorithm.hash.name, bytes, input));
      }
      if (name === "ECDSA") {
        const bytes = keyBytes(key, "sign", "ECDSA");
        return copy(native.subtleP256Sign(hashName(algorithm.hash, "sign ECDSA"), bytes.slice(0, 32), input));
      }
      if (name === "Ed25519") return copy(native.subtleEd25519Sign(keyBytes(key, "sign", "Ed25519").slice(0, 32), input));
      throw notSupported(`sign with ${name}`);
    },

    async verify(algorithm, key, signature, data) {
      const name = algorithmName(algorithm);
      if (name === "HMAC") {
        const bytes = keyBytes(key, "verify", "HMAC");
        return native.subtleHmacVerify(key.algorithm.hash.name, bytes, toBytes(signature, "verify signature"), toBytes(data, "verify data"));
      }
      if (isRsa(name)) {
        const bytes = keyBytes(key, "verify", name);
        const pss = name === "RSA-PSS";
        return native.subtleRsaVerify(pss, saltLength(algorithm, name), key.algorithm.hash.name, bytes, toBytes(signature, "verify signature"), toBytes(data, "verify data"));
      }
      if (name === "Ed25519") {
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
