//! Exec scripts: the files of a project's `scripts/` folder, their
//! invocation logs, and the project secrets scripts read as `ctx.env`.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::{Timestamp, ValidationError};

/// Largest script file.
pub const MAX_SCRIPT_BYTES: usize = 1 << 20;
/// Most secrets per project.
pub const MAX_SECRETS: usize = 100;
/// Largest secret value.
pub const MAX_SECRET_BYTES: usize = 8 << 10;

/// One file of a project's `scripts/` folder.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ScriptFile {
    /// Relative to `scripts/`, like `webhooks/signup.ts`.
    pub path: String,
    pub size: u64,
    /// SHA-256 of the content, hex: compare before pushing.
    pub sha256: String,
    /// The URL it serves (`[name]` segments stay as written).
    pub url: String,
    #[serde(with = "time::serde::rfc3339")]
    #[cfg_attr(feature = "openapi", schema(value_type = String, format = DateTime))]
    pub updated_at: Timestamp,
}

/// A line a script printed with `console.*`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ScriptLogLine {
    /// `log`, `info`, `warn`, `error` or `debug`.
    pub level: String,
    pub message: String,
}

/// One invocation of a script.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ScriptInvocation {
    #[serde(with = "time::serde::rfc3339")]
    #[cfg_attr(feature = "openapi", schema(value_type = String, format = DateTime))]
    pub at: Timestamp,
    /// The file that ran.
    pub script: String,
    pub method: String,
    /// The request's path.
    pub path: String,
    /// The status answered.
    pub status: u16,
    pub duration_ms: u64,
    /// Why it failed (timeout, memory, exception), if it did.
    pub error: Option<String>,
    pub logs: Vec<ScriptLogLine>,
}

/// The names of a project's secrets (values are never returned).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct SecretNames {
    pub names: Vec<String>,
}

/// The body of `PUT /api/v1/projects/{id}/secrets`: the whole set, which
/// replaces the previous one.
pub type PutSecrets = BTreeMap<String, String>;

/// Whether the script file `path` is only there to be imported (one of its
/// segments starts with `_`, as `_lib/verify.ts`): it is no endpoint, and
/// `cubby scripts push --bundle` inlines it instead of pushing it.
pub fn is_private_script(path: &str) -> bool {
    path.split('/').any(|segment| segment.starts_with('_'))
}

/// Checks a script's path: relative segments of letters, digits, `_`,
/// `-`, `.` and `[name]` parameters, ending in `.js` or `.ts`.
pub fn validate_script_path(path: &str) -> Result<(), ValidationError> {
    let bad = |why: &str| {
        Err(ValidationError::new(
            "path",
            format!(
                "`{}` is not a valid script path: {why}. Write it like `webhooks/stripe.ts` or `users/[id].js`",
                path.escape_default()
            ),
        ))
    };
    if path.is_empty() || path.len() > 200 {
        return bad("its length must be 1 to 200 characters");
    }
    if !(path.ends_with(".js") || path.ends_with(".ts")) {
        return bad("it must end in .js or .ts");
    }
    let segments: Vec<&str> = path.split('/').collect();
    if segments.len() > 8 {
        return bad("it has more than 8 segments");
    }
    for seg in &segments {
        if seg.is_empty() || seg.starts_with('.') {
            return bad("a segment is empty or starts with a dot");
        }
        let inner = seg.strip_prefix('[').map(|s| s.split_once(']'));
        let name_ok = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_');
        match inner {
            Some(Some((name, rest))) if name_ok(name) && (rest.is_empty() || rest == ".js" || rest == ".ts") => {}
            Some(_) => return bad("a parameter segment must look like `[name]`"),
            None if seg.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.')) => {}
            None => return bad("it has a character other than letters, digits, `_`, `-`, `.` and `[name]`"),
        }
    }
    Ok(())
}

/// Checks a secrets set: names like environment variables, bounded sizes.
pub fn validate_secrets(secrets: &PutSecrets) -> Result<(), ValidationError> {
    if secrets.len() > MAX_SECRETS {
        return Err(ValidationError::new("secrets", format!("at most {MAX_SECRETS} secrets per project")));
    }
    for (name, value) in secrets {
        let ok = !name.is_empty()
            && name.len() <= 64
            && !name.starts_with(|c: char| c.is_ascii_digit())
            && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_');
        if !ok {
            return Err(ValidationError::new(
                format!("secrets.{name}"),
                "a secret name is 1 to 64 letters, digits and `_`, not starting with a digit, like STRIPE_SECRET",
            ));
        }
        if value.len() > MAX_SECRET_BYTES {
            return Err(ValidationError::new(format!("secrets.{name}"), "a secret value is at most 8 KiB"));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn script_paths() {
        for ok in ["a.js", "webhooks/stripe-signup.ts", "users/[id].ts", "[org]/repos/[repo]/index.js", "v1.2/x.js"] {
            assert!(validate_script_path(ok).is_ok(), "{ok}");
        }
        for bad in ["", "a.py", "../a.js", "/a.js", "a//b.js", ".env.js", "a/.x/b.js", "a b.js", "[a-b].js", "[x.js"] {
            assert!(validate_script_path(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn secrets() {
        let ok = PutSecrets::from([("STRIPE_SECRET".into(), "whsec_x".into())]);
        assert!(validate_secrets(&ok).is_ok());
        for bad in ["", "1X", "A-B", "a b"] {
            assert!(validate_secrets(&PutSecrets::from([(bad.into(), "v".into())])).is_err(), "{bad}");
        }
    }
}
