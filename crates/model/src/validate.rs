//! Input rules for names, env vars and commands. The core calls these on
//! every request, so a bad value is refused before anything touches the host.

use std::collections::BTreeMap;

/// Why a field was refused. `message` says what to write instead.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {message}")]
pub struct ValidationError {
    /// The field, as named in the API (`name`, `environment_vars.FOO`).
    pub field: String,
    /// What is wrong and what to do.
    pub message: String,
}

impl ValidationError {
    /// A refusal of `field`.
    pub fn new(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self { field: field.into(), message: message.into() }
    }
}

/// Most env vars a container may have.
pub const MAX_ENV_VARS: usize = 128;
/// Longest env value, in bytes.
pub const MAX_ENV_VALUE: usize = 32 * 1024;
/// Most command arguments.
pub const MAX_COMMAND_ARGS: usize = 256;
/// Longest command argument, in bytes.
pub const MAX_COMMAND_ARG: usize = 4096;

fn dns_label(field: &str, value: &str, max: usize, what: &str) -> Result<(), ValidationError> {
    let bad = |why: &str| {
        Err(ValidationError::new(
            field,
            format!(
                "`{}` is not a valid {what} name: {why}. Use 1 to {max} lowercase letters, digits and single hyphens, starting and ending with a letter or digit",
                value.escape_default()
            ),
        ))
    };
    if value.is_empty() {
        return bad("it is empty");
    }
    if value.len() > max {
        return bad("it is too long");
    }
    if !value.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-') {
        return bad("it has a character other than a-z, 0-9 and -");
    }
    if value.starts_with('-') || value.ends_with('-') {
        return bad("it starts or ends with a hyphen");
    }
    if value.contains("--") {
        return bad("it has two hyphens in a row (`--` separates names in URLs)");
    }
    Ok(())
}

/// A container name: a DNS label of at most 30 characters, unique in its
/// project. It appears in the container's URL and is its hostname.
pub fn validate_container_name(name: &str) -> Result<(), ValidationError> {
    dns_label("name", name, 30, "container")
}

/// A project name: a DNS label of at most 20 characters that does not end
/// in `-<digits>` (URLs use that suffix for ports), unique on the daemon.
pub fn validate_project_name(name: &str) -> Result<(), ValidationError> {
    dns_label("name", name, 20, "project")?;
    if let Some((_, tail)) = name.rsplit_once('-')
        && tail.bytes().all(|b| b.is_ascii_digit())
    {
        return Err(ValidationError::new(
            "name",
            format!(
                "`{name}` ends in `-{tail}`, which URLs use for ports: choose a name that does not end in a hyphen and digits"
            ),
        ));
    }
    if name == "exec" {
        return Err(ValidationError::new("name", "`exec` is reserved for script URLs: choose another project name"));
    }
    Ok(())
}

/// An image name: 1 to 64 of `a-z 0-9 . _ -`, starting with a letter or digit.
pub fn validate_image_name(name: &str) -> Result<(), ValidationError> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && name.bytes().next().is_some_and(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
        && name.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'.' | b'_' | b'-'));
    if ok {
        Ok(())
    } else {
        Err(ValidationError::new(
            "image",
            format!(
                "`{}` is not a valid image name: use 1 to 64 of a-z, 0-9, '.', '_' and '-', starting with a letter or digit",
                name.escape_default()
            ),
        ))
    }
}

/// Env vars: keys like shell identifiers, bounded count and sizes, no NUL.
pub fn validate_env(field: &str, env: &BTreeMap<String, String>) -> Result<(), ValidationError> {
    if env.len() > MAX_ENV_VARS {
        return Err(ValidationError::new(
            field,
            format!("{} variables given; at most {MAX_ENV_VARS} are allowed", env.len()),
        ));
    }
    for (key, value) in env {
        let valid_key = !key.is_empty()
            && key.len() <= 128
            && key.bytes().next().is_some_and(|b| b.is_ascii_alphabetic() || b == b'_')
            && key.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_');
        if !valid_key {
            return Err(ValidationError::new(
                format!("{field}.{}", key.escape_default()),
                "a variable name must be 1 to 128 letters, digits and underscores, not starting with a digit",
            ));
        }
        if value.len() > MAX_ENV_VALUE {
            return Err(ValidationError::new(
                format!("{field}.{key}"),
                format!("the value is {} bytes; at most {MAX_ENV_VALUE} are allowed", value.len()),
            ));
        }
        if value.contains('\0') {
            return Err(ValidationError::new(format!("{field}.{key}"), "the value contains a NUL byte"));
        }
    }
    Ok(())
}

/// A command: at least one argument, bounded count and sizes, no NUL.
pub fn validate_command(field: &str, command: &[String]) -> Result<(), ValidationError> {
    if command.is_empty() || command[0].is_empty() {
        return Err(ValidationError::new(
            field,
            "the command is empty: give the program and its arguments, like [\"/bin/sh\", \"-c\", \"...\"]",
        ));
    }
    if command.len() > MAX_COMMAND_ARGS {
        return Err(ValidationError::new(
            field,
            format!("{} arguments given; at most {MAX_COMMAND_ARGS} are allowed", command.len()),
        ));
    }
    for (i, arg) in command.iter().enumerate() {
        if arg.len() > MAX_COMMAND_ARG {
            return Err(ValidationError::new(
                format!("{field}[{i}]"),
                format!("the argument is longer than {MAX_COMMAND_ARG} bytes"),
            ));
        }
        if arg.contains('\0') {
            return Err(ValidationError::new(format!("{field}[{i}]"), "the argument contains a NUL byte"));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn container_names() {
        for ok in ["a", "tenant-a", "web-2", "x1y2", &"a".repeat(30)] {
            assert!(validate_container_name(ok).is_ok(), "{ok}");
        }
        for bad in ["", "-a", "a-", "A", "a_b", "a--b", "ä", "a.b", &"a".repeat(31), "a b"] {
            assert!(validate_container_name(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn project_names_cannot_look_like_port_suffixes() {
        assert!(validate_project_name("acme").is_ok());
        assert!(validate_project_name("acme-corp").is_ok());
        assert!(validate_project_name("acme2").is_ok());
        assert!(validate_project_name("acme-2").is_err());
        assert!(validate_project_name("exec").is_err());
    }

    #[test]
    fn env_rules() {
        let mut env = BTreeMap::new();
        env.insert("GREETING".to_string(), "hello".to_string());
        env.insert("_X1".to_string(), String::new());
        assert!(validate_env("environment_vars", &env).is_ok());
        env.insert("1BAD".to_string(), "x".to_string());
        let err = validate_env("environment_vars", &env).unwrap_err();
        assert_eq!(err.field, "environment_vars.1BAD");
        let mut big = BTreeMap::new();
        big.insert("A".to_string(), "x".repeat(MAX_ENV_VALUE + 1));
        assert!(validate_env("environment_vars", &big).is_err());
    }

    #[test]
    fn command_rules() {
        assert!(validate_command("command", &["sh".into()]).is_ok());
        assert!(validate_command("command", &[]).is_err());
        assert!(validate_command("command", &["".into()]).is_err());
        assert!(validate_command("command", &["a\0b".into()]).is_err());
    }

    #[test]
    fn image_names() {
        assert!(validate_image_name("minimal").is_ok());
        assert!(validate_image_name("alpine-3.20_x").is_ok());
        assert!(validate_image_name("../etc").is_err());
        assert!(validate_image_name("Alpine").is_err());
    }
}
