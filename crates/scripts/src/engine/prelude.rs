//! The JavaScript prelude (`js/*.js`): compiled once per process to QuickJS
//! bytecode, then loaded into each fresh context, which is about eight
//! times cheaper than parsing it on every request.

use std::sync::OnceLock;

use rquickjs::module::WriteOptions;
use rquickjs::{Context, Ctx, Function, Module, Object, Runtime, Value};

/// The prelude's parts, in evaluation order, with the module names their
/// stack frames show. Each is a function `(native, internals) => void`.
const PARTS: [(&str, &str); 7] = [
    ("cubby:url.js", include_str!("js/url.js")),
    ("cubby:events.js", include_str!("js/events.js")),
    ("cubby:streams.js", include_str!("js/streams.js")),
    ("cubby:blob.js", include_str!("js/blob.js")),
    ("cubby:web.js", include_str!("js/web.js")),
    ("cubby:webcrypto.js", include_str!("js/webcrypto.js")),
    ("cubby:runtime.js", include_str!("js/runtime.js")),
];

/// The parts' bytecode, made on first use and kept for the process.
static BYTECODE: OnceLock<Result<Vec<Vec<u8>>, String>> = OnceLock::new();

/// Compiles each part as a module whose default export is the part's
/// function, in a throwaway runtime, and writes the modules as bytecode.
fn compile() -> Result<Vec<Vec<u8>>, String> {
    let fail = |e: rquickjs::Error| format!("could not compile the script prelude: {e}");
    let runtime = Runtime::new().map_err(fail)?;
    let context = Context::full(&runtime).map_err(fail)?;
    context.with(|ctx| {
        PARTS
            .iter()
            .map(|(name, source)| {
                let module =
                    Module::declare(ctx.clone(), *name, format!("export default {source}")).map_err(|e| match e {
                        rquickjs::Error::Exception => {
                            let thrown = ctx.catch();
                            let text = thrown
                                .as_exception()
                                .and_then(|x| x.message())
                                .unwrap_or_else(|| format!("{thrown:?}"));
                            format!("could not compile the script prelude {name}: {text}")
                        }
                        other => fail(other),
                    })?;
                module.write(WriteOptions::default()).map_err(fail)
            })
            .collect()
    })
}

/// Runs the prelude in `ctx` against `native`; answers its `internals`
/// object (`makeRequest`, `makeContext`, `invoke`, ...).
pub(crate) fn load<'js>(ctx: &Ctx<'js>, native: &Object<'js>) -> Result<Object<'js>, PreludeError> {
    let parts = BYTECODE.get_or_init(compile).as_ref().map_err(|m| PreludeError::Compile(m.clone()))?;
    let internals = Object::new(ctx.clone())?;
    for code in parts {
        // SAFETY: `code` is bytecode that `Module::write` of this same
        // QuickJS build made in this process (see `compile`), never bytes
        // from outside. It lives in a static for the rest of the process,
        // so QuickJS may keep referring to it (it reads with ROM_DATA).
        let module = unsafe { Module::load(ctx.clone(), code) }?;
        let (module, evaluated) = module.eval()?;
        evaluated.finish::<Value>()?;
        let part: Function = module.get("default")?;
        part.call::<_, ()>((native.clone(), internals.clone()))?;
    }
    Ok(internals)
}

/// The prelude could not be set up.
#[derive(Debug)]
pub(crate) enum PreludeError {
    /// The one-time compilation failed (a bug in the prelude).
    Compile(String),
    /// Loading or running it failed in this context (usually out of memory).
    Js(rquickjs::Error),
}

impl From<rquickjs::Error> for PreludeError {
    fn from(e: rquickjs::Error) -> Self {
        PreludeError::Js(e)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prelude_compiles() {
        let parts = compile().unwrap();
        assert_eq!(parts.len(), PARTS.len());
        assert!(parts.iter().all(|p| !p.is_empty()));
    }
}
