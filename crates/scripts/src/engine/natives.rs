//! The Rust functions the JavaScript prelude is built on. They live on one
//! object handed to the prelude's closures, never on `globalThis`, so
//! scripts cannot call them with arguments the prelude did not check.

use std::cell::RefCell;
use std::rc::Rc;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use rquickjs::{Array, Ctx, Exception, Function, Object, Promise, TypedArray};

use super::console::LogBuffer;
use super::thrown::Thrown;
use super::{builtins, webcrypto};
use crate::FetchError;
use crate::host::{AnswerRoom, FetchRequest, ScriptHost};

/// `fetch`'s timeout when the script gives none.
pub(crate) const DEFAULT_FETCH_TIMEOUT: Duration = Duration::from_secs(10);
/// A fetch cut short this close to the script's deadline is the deadline's doing.
const DEADLINE_MARGIN: Duration = Duration::from_millis(50);

/// Host calls (`fetch`, `ctx.cubby`) one invocation may have waiting at once.
pub(crate) const MAX_HOST_CALLS: usize = 16;

/// What the natives of one invocation share.
pub(crate) struct NativeState {
    pub(crate) host: Arc<dyn ScriptHost>,
    pub(crate) logs: Rc<RefCell<LogBuffer>>,
    pub(crate) deadline: Instant,
    /// Room for host answers outside the JavaScript heap (the script's
    /// memory limit), shared by its calls in flight.
    pub(crate) room: AnswerRoom,
    /// Host calls waiting for their answer.
    pub(crate) in_flight: Rc<std::cell::Cell<usize>>,
}

/// One host call in flight; it stops counting when dropped (answered,
/// failed, or gone with the runtime).
struct InFlight(Rc<std::cell::Cell<usize>>);

impl InFlight {
    fn start(state: &NativeState, what: impl FnOnce() -> String) -> Result<Self, Thrown> {
        let n = state.in_flight.get();
        if n >= MAX_HOST_CALLS {
            return Err(Thrown::TooManyHostCalls { what: what(), limit: MAX_HOST_CALLS });
        }
        state.in_flight.set(n + 1);
        Ok(Self(Rc::clone(&state.in_flight)))
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.set(self.0.get() - 1);
    }
}

/// Runs `f` on the bytes of a typed array.
pub(crate) fn with_bytes<R>(array: &TypedArray<'_, u8>, f: impl FnOnce(&[u8]) -> R) -> R {
    // SAFETY: the slice aliases the array's buffer, which only JavaScript can
    // write, detach or resize. `f` is plain Rust that runs no JavaScript, and
    // the slice does not outlive this call. A detached buffer reads as empty.
    let bytes = unsafe { array.as_bytes() }.unwrap_or(&[]);
    f(bytes)
}

pub(crate) fn type_error(ctx: &Ctx<'_>, error: &dyn std::fmt::Display) -> rquickjs::Error {
    Exception::throw_type(ctx, &error.to_string())
}

/// Milliseconds from JavaScript as a duration, `None` for zero, negative or NaN.
fn millis(ms: f64) -> Option<Duration> {
    if ms.is_nan() || ms <= 0.0 {
        return None;
    }
    // Capped at a day so the conversion cannot overflow.
    Duration::try_from_secs_f64((ms / 1000.0).min(86_400.0)).ok()
}

/// Flat `[name, value, name, value, ...]` to pairs.
pub(crate) fn pairs(flat: Vec<String>) -> Vec<(String, String)> {
    let mut out = Vec::with_capacity(flat.len() / 2);
    let mut it = flat.into_iter();
    while let (Some(name), Some(value)) = (it.next(), it.next()) {
        out.push((name, value));
    }
    out
}

/// Builds the native object of one invocation.
pub(crate) fn install<'js>(ctx: &Ctx<'js>, state: &Rc<NativeState>) -> rquickjs::Result<Object<'js>> {
    let native = Object::new(ctx.clone())?;

    let logs = state.logs.clone();
    native.set(
        "log",
        Function::new(ctx.clone(), move |level: String, message: String| {
            logs.borrow_mut().push(&level, &message);
        })?,
    )?;
    native.set(
        "utf8Encode",
        Function::new(ctx.clone(), |ctx: Ctx<'js>, text: String| TypedArray::<u8>::new(ctx, text.into_bytes()))?,
    )?;
    native.set(
        "utf8Decode",
        Function::new(ctx.clone(), |ctx: Ctx<'js>, bytes: TypedArray<'js, u8>, fatal: bool| {
            with_bytes(&bytes, |b| builtins::utf8_decode(b, fatal)).map_err(|m| type_error(&ctx, &m))
        })?,
    )?;
    native.set(
        "atob",
        Function::new(ctx.clone(), |ctx: Ctx<'js>, data: String| {
            builtins::atob(&data).map_err(|m| type_error(&ctx, &m))
        })?,
    )?;
    native.set(
        "btoa",
        Function::new(ctx.clone(), |ctx: Ctx<'js>, data: String| {
            builtins::btoa(&data).map_err(|m| type_error(&ctx, &m))
        })?,
    )?;
    native.set(
        "sha256",
        Function::new(ctx.clone(), |data: TypedArray<'js, u8>| with_bytes(&data, builtins::sha256_hex))?,
    )?;
    native.set(
        "hmacSha256",
        Function::new(ctx.clone(), |key: TypedArray<'js, u8>, data: TypedArray<'js, u8>| {
            with_bytes(&key, |k| with_bytes(&data, |d| builtins::hmac_sha256_hex(k, d)))
        })?,
    )?;
    native.set(
        "subtleDigest",
        Function::new(ctx.clone(), |ctx: Ctx<'js>, hash: String, data: TypedArray<'js, u8>| {
            let hash = webcrypto::Hash::parse(&hash).map_err(|m| type_error(&ctx, &m))?;
            TypedArray::<u8>::new(ctx, with_bytes(&data, |d| webcrypto::digest(hash, d)))
        })?,
    )?;
    native.set(
        "subtleHmacSign",
        Function::new(
            ctx.clone(),
            |ctx: Ctx<'js>, hash: String, key: TypedArray<'js, u8>, data: TypedArray<'js, u8>| {
                let hash = webcrypto::Hash::parse(&hash).map_err(|m| type_error(&ctx, &m))?;
                TypedArray::<u8>::new(
                    ctx,
                    with_bytes(&key, |k| with_bytes(&data, |d| webcrypto::hmac_sign(hash, k, d))),
                )
            },
        )?,
    )?;
    native.set(
        "subtleHmacVerify",
        Function::new(
            ctx.clone(),
            |ctx: Ctx<'js>,
             hash: String,
             key: TypedArray<'js, u8>,
             signature: TypedArray<'js, u8>,
             data: TypedArray<'js, u8>| {
                let hash = webcrypto::Hash::parse(&hash).map_err(|m| type_error(&ctx, &m))?;
                Ok::<_, rquickjs::Error>(with_bytes(&key, |k| {
                    with_bytes(&signature, |s| with_bytes(&data, |d| webcrypto::hmac_verify(hash, k, s, d)))
                }))
            },
        )?,
    )?;
    native.set(
        "subtleEd25519Verify",
        Function::new(
            ctx.clone(),
            |ctx: Ctx<'js>, public: TypedArray<'js, u8>, signature: TypedArray<'js, u8>, data: TypedArray<'js, u8>| {
                with_bytes(&public, |p| {
                    with_bytes(&signature, |s| with_bytes(&data, |d| webcrypto::ed25519_verify(p, s, d)))
                })
                .map_err(|m| type_error(&ctx, &m))
            },
        )?,
    )?;
    native.set(
        "subtleAesGcm",
        Function::new(
            ctx.clone(),
            |ctx: Ctx<'js>,
             encrypt: bool,
             key: TypedArray<'js, u8>,
             iv: TypedArray<'js, u8>,
             aad: TypedArray<'js, u8>,
             data: TypedArray<'js, u8>| {
                let out = with_bytes(&key, |k| {
                    with_bytes(&iv, |i| {
                        with_bytes(&aad, |a| with_bytes(&data, |d| webcrypto::aes_gcm(encrypt, k, i, a, d)))
                    })
                })
                .map_err(|m| type_error(&ctx, &m))?;
                TypedArray::<u8>::new(ctx, out)
            },
        )?,
    )?;
    native.set(
        "subtlePbkdf2",
        Function::new(
            ctx.clone(),
            |ctx: Ctx<'js>,
             hash: String,
             password: TypedArray<'js, u8>,
             salt: TypedArray<'js, u8>,
             iterations: u32,
             bits: u32| {
                let hash = webcrypto::Hash::parse(&hash).map_err(|m| type_error(&ctx, &m))?;
                let out =
                    with_bytes(&password, |p| with_bytes(&salt, |s| webcrypto::pbkdf2(hash, p, s, iterations, bits)))
                        .map_err(|m| type_error(&ctx, &m))?;
                TypedArray::<u8>::new(ctx, out)
            },
        )?,
    )?;
    native.set(
        "subtleHkdf",
        Function::new(
            ctx.clone(),
            |ctx: Ctx<'js>,
             hash: String,
             ikm: TypedArray<'js, u8>,
             salt: TypedArray<'js, u8>,
             info: TypedArray<'js, u8>,
             bits: u32| {
                let hash = webcrypto::Hash::parse(&hash).map_err(|m| type_error(&ctx, &m))?;
                let out = with_bytes(&ikm, |k| {
                    with_bytes(&salt, |s| with_bytes(&info, |i| webcrypto::hkdf(hash, k, s, i, bits)))
                })
                .map_err(|m| type_error(&ctx, &m))?;
                TypedArray::<u8>::new(ctx, out)
            },
        )?,
    )?;
    super::keys::install(ctx, &native)?;
    native.set(
        "subtleP256Public",
        Function::new(ctx.clone(), |ctx: Ctx<'js>, format: String, data: TypedArray<'js, u8>| {
            let out = with_bytes(&data, |d| webcrypto::p256_public(&format, d)).map_err(|m| type_error(&ctx, &m))?;
            TypedArray::<u8>::new(ctx, out)
        })?,
    )?;
    native.set(
        "subtleP256Verify",
        Function::new(
            ctx.clone(),
            |ctx: Ctx<'js>,
             hash: String,
             public: TypedArray<'js, u8>,
             signature: TypedArray<'js, u8>,
             data: TypedArray<'js, u8>| {
                let hash = webcrypto::Hash::parse(&hash).map_err(|m| type_error(&ctx, &m))?;
                with_bytes(&public, |p| {
                    with_bytes(&signature, |s| with_bytes(&data, |d| webcrypto::p256_verify(hash, p, s, d)))
                })
                .map_err(|m| type_error(&ctx, &m))
            },
        )?,
    )?;
    native.set(
        "timingSafeEqual",
        Function::new(ctx.clone(), |a: TypedArray<'js, u8>, b: TypedArray<'js, u8>| {
            with_bytes(&a, |a| with_bytes(&b, |b| builtins::timing_safe_equal(a, b)))
        })?,
    )?;
    native.set(
        "randomBytes",
        Function::new(ctx.clone(), |ctx: Ctx<'js>, n: u32| {
            let n = usize::try_from(n).unwrap_or(0);
            let bytes = builtins::random_bytes(n).map_err(|m| type_error(&ctx, &m))?;
            TypedArray::<u8>::new(ctx, bytes)
        })?,
    )?;
    native.set(
        "randomUUID",
        Function::new(ctx.clone(), |ctx: Ctx<'js>| builtins::uuid_v4().map_err(|m| type_error(&ctx, &m)))?,
    )?;
    native.set(
        "urlParse",
        Function::new(ctx.clone(), |ctx: Ctx<'js>, input: String, base: Option<String>| {
            builtins::url_parse(&input, base.as_deref())
                .map(|url| builtins::url_parts(&url))
                .map_err(|m| type_error(&ctx, &m))
        })?,
    )?;
    native.set(
        "urlSet",
        Function::new(ctx.clone(), |ctx: Ctx<'js>, href: String, field: String, value: String| {
            builtins::url_set(&href, &field, &value)
                .map(|url| builtins::url_parts(&url))
                .map_err(|m| type_error(&ctx, &m))
        })?,
    )?;
    install_async(ctx, &native, state)?;
    Ok(native)
}

/// The natives that answer with a promise: host calls and sleeps.
fn install_async<'js>(ctx: &Ctx<'js>, native: &Object<'js>, state: &Rc<NativeState>) -> rquickjs::Result<()> {
    native.set(
        "sleep",
        Function::new(ctx.clone(), |ctx: Ctx<'js>, ms: f64| {
            let delay = millis(ms).unwrap_or_default();
            Promise::wrap_future(&ctx, async move {
                tokio::time::sleep(delay).await;
                rquickjs::Result::Ok(())
            })
        })?,
    )?;

    let st = state.clone();
    native.set(
        "cubby",
        Function::new(ctx.clone(), move |ctx: Ctx<'js>, method: String, path: String, body: Option<String>| {
            let call = InFlight::start(&st, || format!("ctx.cubby {method} {path}"))
                .map(|in_flight| (in_flight, st.host.cubby(&method, &path, body, st.room.clone())));
            let (js, room) = (ctx.clone(), st.room.clone());
            Promise::wrap_future(&ctx, async move {
                let (in_flight, answer) = call.map_err(|m| type_error(&js, &m))?;
                let answered = answer.await;
                drop(in_flight);
                let (status, body) =
                    answered.map_err(|m| type_error(&js, &format!("ctx.cubby {method} {path} failed: {m}")))?;
                // From here the answer lives in the script's heap.
                room.give(body.len());
                let out = Array::new(js.clone())?;
                out.set(0, status)?;
                out.set(1, body)?;
                rquickjs::Result::Ok(out)
            })
        })?,
    )?;

    let st = state.clone();
    native.set(
        "fetch",
        Function::new(
            ctx.clone(),
            move |ctx: Ctx<'js>,
                  method: String,
                  url: String,
                  headers: Vec<String>,
                  body: TypedArray<'js, u8>,
                  timeout_ms: f64| {
                let deadline = st.deadline;
                let remaining = deadline.saturating_duration_since(Instant::now());
                let wanted = millis(timeout_ms).unwrap_or(DEFAULT_FETCH_TIMEOUT);
                let timeout = wanted.min(remaining);
                let capped = remaining < wanted;
                let call = InFlight::start(&st, || format!("fetch {url}")).map(|in_flight| {
                    let answer = st.host.fetch(FetchRequest {
                        method,
                        url: url.clone(),
                        headers: pairs(headers),
                        body: with_bytes(&body, Bytes::copy_from_slice),
                        timeout,
                        room: st.room.clone(),
                    });
                    (in_flight, answer)
                });
                let (js, room) = (ctx.clone(), st.room.clone());
                Promise::wrap_future(&ctx, async move {
                    let (in_flight, answer) = call.map_err(|m| type_error(&js, &m))?;
                    // The host should honour the timeout; this makes sure.
                    let answered = tokio::time::timeout(timeout, answer).await;
                    drop(in_flight);
                    if let Ok(Ok(response)) = &answered {
                        // From here the body lives in the script's heap.
                        room.give(response.body.len());
                    }
                    let failure = match answered {
                        Ok(Ok(response)) => Ok(response),
                        Ok(Err(error)) => Err(error),
                        Err(_) => Err(FetchError::Timeout { url, timeout }),
                    };
                    let response = match failure {
                        Ok(response) => response,
                        // Cut short by the script's own deadline: leave the
                        // promise pending so the run ends as a Timeout, not
                        // as this fetch's error.
                        Err(_) if capped && Instant::now() + DEADLINE_MARGIN >= deadline => {
                            std::future::pending::<()>().await;
                            return Err(type_error(&js, &"unreachable"));
                        }
                        Err(error) => return Err(type_error(&js, &error)),
                    };
                    let flat: Vec<String> =
                        response.headers.into_iter().flat_map(|(name, value)| [name, value]).collect();
                    let out = Array::new(js.clone())?;
                    out.set(0, response.status)?;
                    out.set(1, flat)?;
                    out.set(2, TypedArray::<u8>::new(js.clone(), response.body.to_vec())?)?;
                    rquickjs::Result::Ok(out)
                })
            },
        )?,
    )?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn millis_is_total() {
        assert_eq!(millis(f64::NAN), None);
        assert_eq!(millis(-5.0), None);
        assert_eq!(millis(0.0), None);
        assert_eq!(millis(250.0), Some(Duration::from_millis(250)));
        assert_eq!(millis(f64::INFINITY), Some(Duration::from_secs(86_400)));
    }

    #[test]
    fn pairs_drop_a_dangling_name() {
        let got = pairs(vec!["a".into(), "1".into(), "b".into()]);
        assert_eq!(got, vec![("a".to_owned(), "1".to_owned())]);
    }
}
