//! Magic comments: the `// @word value` lines at the top of a script that
//! configure how the daemon runs it (`@timeout`, `@token`, `@cors`,
//! `@concurrent`, `@on`). Only parsing lives here; the daemon applies them
//! (and checks that `@on` names event types it has).

use std::time::Duration;

/// The largest `@timeout` a script may ask for: 5 minutes.
pub const MAX_TIMEOUT_MS: u64 = 300_000;

/// Settings read from a script's leading magic comments.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Magic {
    /// `// @timeout <ms>`: the script's time limit.
    pub timeout: Option<Duration>,
    /// `// @token <secret>`: requests must carry this bearer token.
    pub token: Option<String>,
    /// `// @cors <origin|*>`: the `Access-Control-Allow-Origin` to answer with.
    pub cors: Option<String>,
    /// `// @concurrent false`: run one request at a time (default true).
    pub concurrent: bool,
    /// `// @on container.oom_killed container.exited`: the project's events
    /// the script is also run for (a `POST` of the event as JSON).
    pub on: Vec<String>,
}

impl Default for Magic {
    fn default() -> Self {
        Self { timeout: None, token: None, cors: None, concurrent: true, on: Vec::new() }
    }
}

/// Most event types one `@on` may name.
pub const MAX_ON_EVENTS: usize = 32;

/// A magic comment that could not be understood.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("line {line}: {problem}")]
pub struct MagicError {
    /// 1-based line of the offending comment.
    pub line: usize,
    /// What is wrong (its text says how to write it instead).
    pub problem: MagicProblem,
}

/// What is wrong with one magic comment.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MagicProblem {
    /// Not one of the known words.
    #[error(
        "unknown magic comment `@{0}`; the known ones are @timeout, @token, @cors, @concurrent and @on \
         (write `// note` without `@` for a plain comment)"
    )]
    Unknown(String),
    /// The same word twice.
    #[error("@{0} is given twice; keep one")]
    Repeated(String),
    /// `@timeout` without a number.
    #[error("@timeout wants milliseconds, like `// @timeout 5000`")]
    TimeoutNotMillis,
    /// `@timeout` out of range.
    #[error("@timeout {0} is out of range: use 1 to {MAX_TIMEOUT_MS} milliseconds")]
    TimeoutRange(u64),
    /// `@token` empty or with spaces or control characters.
    #[error("@token wants one secret without spaces or control characters, like `// @token s3cr3t-value`")]
    Token,
    /// `@cors` neither `*` nor an origin.
    #[error("@cors wants `*` or one origin, like `// @cors https://app.example.com`")]
    Cors,
    /// `@cors` with a path or an unknown scheme.
    #[error(
        "@cors wants `*` or one origin, like `// @cors https://app.example.com`: an origin is scheme://host[:port] with no path"
    )]
    CorsNotOrigin,
    /// `@concurrent` neither `true` nor `false`.
    #[error("@concurrent wants `true` or `false`, like `// @concurrent false`")]
    Concurrent,
    /// `@on` without event types, or with something that is not one.
    #[error(
        "@on wants event types separated by spaces or commas (at most {MAX_ON_EVENTS}), like `// @on container.oom_killed container.exited`"
    )]
    On,
}

/// Reads the magic comments of `source`.
///
/// Only the header counts: `//` lines and blank lines at the top of the file;
/// the first other line (code, or a `/* */` comment) ends it. A `//` line
/// whose text starts with `@` is a magic comment; other comments, and
/// TypeScript's `// @ts-...` directives, are ignored.
///
/// # Errors
///
/// An unknown `@word`, a repeated one, or a malformed value, with the line
/// number and an example of the right form.
pub fn parse_magic(source: &str) -> Result<Magic, MagicError> {
    let mut magic = Magic::default();
    let mut seen: Vec<&str> = Vec::new();
    let source = source.strip_prefix('\u{feff}').unwrap_or(source);
    for (index, raw) in source.lines().enumerate() {
        let line = index + 1;
        let trimmed = raw.trim();
        if trimmed.is_empty() {
            continue;
        }
        let Some(comment) = trimmed.strip_prefix("//") else {
            break;
        };
        let comment = comment.trim();
        let Some(rest) = comment.strip_prefix('@') else {
            continue;
        };
        // TypeScript's own directives (`// @ts-nocheck`, ...) are plain comments here.
        if rest.starts_with("ts-") {
            continue;
        }
        let (word, value) = match rest.split_once(char::is_whitespace) {
            Some((word, value)) => (word, value.trim()),
            None => (rest, ""),
        };
        let err = |problem: MagicProblem| MagicError { line, problem };
        let word = match word {
            "timeout" | "token" | "cors" | "concurrent" | "on" => word,
            other => {
                return Err(err(MagicProblem::Unknown(other.to_owned())));
            }
        };
        if seen.contains(&word) {
            return Err(err(MagicProblem::Repeated(word.to_owned())));
        }
        seen.push(word);
        match word {
            "timeout" => magic.timeout = Some(parse_timeout(value).map_err(err)?),
            "token" => magic.token = Some(parse_token(value).map_err(err)?),
            "cors" => magic.cors = Some(parse_cors(value).map_err(err)?),
            "on" => magic.on = parse_on(value).map_err(err)?,
            _ => magic.concurrent = parse_concurrent(value).map_err(err)?,
        }
    }
    Ok(magic)
}

fn parse_timeout(value: &str) -> Result<Duration, MagicProblem> {
    let ms: u64 = value.parse().map_err(|_| MagicProblem::TimeoutNotMillis)?;
    if !(1..=MAX_TIMEOUT_MS).contains(&ms) {
        return Err(MagicProblem::TimeoutRange(ms));
    }
    Ok(Duration::from_millis(ms))
}

fn parse_token(value: &str) -> Result<String, MagicProblem> {
    if value.is_empty() || value.contains(|c: char| c.is_whitespace() || c.is_control()) {
        return Err(MagicProblem::Token);
    }
    Ok(value.to_owned())
}

fn parse_cors(value: &str) -> Result<String, MagicProblem> {
    if value == "*" {
        return Ok(value.to_owned());
    }
    // The origin goes into a response header: visible ASCII only.
    if value.is_empty() || !value.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(MagicProblem::Cors);
    }
    let Some((scheme, host)) = value.split_once("://") else {
        return Err(MagicProblem::Cors);
    };
    if !matches!(scheme, "http" | "https") || host.is_empty() || host.contains('/') {
        return Err(MagicProblem::CorsNotOrigin);
    }
    Ok(value.to_owned())
}

fn parse_on(value: &str) -> Result<Vec<String>, MagicProblem> {
    let mut types: Vec<String> = Vec::new();
    for word in value.split(|c: char| c == ',' || c.is_whitespace()).filter(|w| !w.is_empty()) {
        let shaped = word.contains('.')
            && word.bytes().all(|b| b.is_ascii_lowercase() || b == b'.' || b == b'_')
            && !word.starts_with('.')
            && !word.ends_with('.');
        if !shaped {
            return Err(MagicProblem::On);
        }
        if !types.iter().any(|t| t == word) {
            types.push(word.to_owned());
        }
    }
    if types.is_empty() || types.len() > MAX_ON_EVENTS {
        return Err(MagicProblem::On);
    }
    Ok(types)
}

fn parse_concurrent(value: &str) -> Result<bool, MagicProblem> {
    match value {
        "true" => Ok(true),
        "false" => Ok(false),
        _ => Err(MagicProblem::Concurrent),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_without_header() {
        let magic = parse_magic("export default () => 1;\n// @timeout nonsense\n").unwrap();
        assert_eq!(magic, Magic::default());
        assert!(magic.concurrent);
    }

    #[test]
    fn reads_all_words() {
        let src = "// Signup webhook.\n// @ts-nocheck\n\n// @timeout 5000\n//@token abc-123\n// @cors https://app.example.com:8443\n// @concurrent false\nexport default () => 1;\n";
        let magic = parse_magic(src).unwrap();
        assert_eq!(magic.timeout, Some(Duration::from_millis(5000)));
        assert_eq!(magic.token.as_deref(), Some("abc-123"));
        assert_eq!(magic.cors.as_deref(), Some("https://app.example.com:8443"));
        assert!(!magic.concurrent);
        assert_eq!(parse_magic("// @cors *").unwrap().cors.as_deref(), Some("*"));
    }

    #[test]
    fn header_ends_at_first_other_line() {
        let src = "// @timeout 10\nconst x = 1;\n// @timeout nope\n";
        assert_eq!(parse_magic(src).unwrap().timeout, Some(Duration::from_millis(10)));
        let src = "/* block */\n// @bogus\n";
        assert_eq!(parse_magic(src).unwrap(), Magic::default());
    }

    #[test]
    fn errors_name_the_line() {
        let err = parse_magic("// hello\n// @timeout 5s\n").unwrap_err();
        assert_eq!(err.line, 2);
        assert_eq!(err.to_string(), "line 2: @timeout wants milliseconds, like `// @timeout 5000`");
        let err = parse_magic("// @timeout 0").unwrap_err();
        assert!(err.to_string().contains("out of range"), "{err}");
        let err = parse_magic("// @timeout 300001").unwrap_err();
        assert!(err.to_string().contains("out of range"), "{err}");
        let err = parse_magic("\n\n// @token\n").unwrap_err();
        assert_eq!(err.line, 3);
        assert!(err.to_string().contains("@token wants"), "{err}");
        let err = parse_magic("// @token a b").unwrap_err();
        assert!(err.to_string().contains("without spaces"), "{err}");
        let err = parse_magic("// @cors example.com").unwrap_err();
        assert!(err.to_string().contains("@cors wants"), "{err}");
        let err = parse_magic("// @cors https://a.com/path").unwrap_err();
        assert!(err.to_string().contains("no path"), "{err}");
        // Found by the fuzz target: these values end up in headers.
        let err = parse_magic("// @cors https://a.com\0x").unwrap_err();
        assert!(err.to_string().contains("@cors wants"), "{err}");
        let err = parse_magic("// @token a\u{7}b").unwrap_err();
        assert!(err.to_string().contains("control characters"), "{err}");
        let err = parse_magic("// @concurrent no").unwrap_err();
        assert!(err.to_string().contains("`true` or `false`"), "{err}");
        let err = parse_magic("// @timeuot 5").unwrap_err();
        assert!(err.to_string().contains("unknown magic comment `@timeuot`"), "{err}");
        let err = parse_magic("// @timeout 5\n// @timeout 6").unwrap_err();
        assert_eq!(err.line, 2);
        assert!(err.to_string().contains("twice"), "{err}");
    }

    #[test]
    fn on_lists_event_types() {
        let magic = parse_magic("// @on container.oom_killed, container.exited container.oom_killed\n").unwrap();
        assert_eq!(magic.on, ["container.oom_killed", "container.exited"]);
        assert!(parse_magic("export default () => 1;").unwrap().on.is_empty());
        for bad in ["// @on", "// @on Container.Exited", "// @on oom", "// @on container.exited; rm"] {
            let err = parse_magic(bad).unwrap_err();
            assert_eq!(err.problem, MagicProblem::On, "{bad}");
        }
    }
}
