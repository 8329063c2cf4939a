//! cubby-fetch: the HTTP client of Cubby's built-in `minimal` image.
//!
//! `cubby-fetch [-t SECONDS] [-X METHOD] [-H 'Name: value']... [-d BODY] [-i] URL`
//!
//! Sends one HTTP/1.1 request (`http://` only) and writes the response body
//! to stdout (with `-i`, the status line and headers first). The exit code
//! says what happened, with curl's numbers, so a test can tell "blocked"
//! from "the tool crashed":
//!
//! | code | meaning                                             |
//! |-----:|-----------------------------------------------------|
//! | 0    | a response with status below 400                    |
//! | 22   | a response with status 400 or above                 |
//! | 7    | the connection was refused (or the host unreachable)|
//! | 28   | no connection or no answer within the timeout      |
//! | 6    | the host name did not resolve                       |
//! | 2    | bad usage or URL                                    |
//! | 1    | anything else (the reason goes to stderr)          |
//!
//! It uses only the standard library, so the static build is small and
//! runs in any image.

mod http;

use std::io::Write;
use std::process::ExitCode;
use std::time::Duration;

use crate::http::{Failure, Request};

const USAGE: &str =
    "usage: cubby-fetch [-t SECONDS] [-X METHOD] [-H 'Name: value']... [-d BODY] [-i] http://HOST[:PORT]/PATH";

fn parse(args: &[String]) -> Result<(Request, bool), String> {
    let mut timeout = Duration::from_secs(10);
    let mut method = None;
    let mut headers = Vec::new();
    let mut body = None;
    let mut include = false;
    let mut url = None;
    let mut it = args.iter();
    while let Some(arg) = it.next() {
        let mut value = |flag: &str| it.next().cloned().ok_or_else(|| format!("{flag} needs a value"));
        match arg.as_str() {
            "-t" => {
                let secs: f64 = value("-t")?.parse().map_err(|_| "-t takes seconds, like 2 or 0.5".to_string())?;
                if !(secs.is_finite() && secs > 0.0 && secs <= 3600.0) {
                    return Err("-t takes 0 to 3600 seconds".into());
                }
                timeout = Duration::from_secs_f64(secs);
            }
            "-X" => method = Some(value("-X")?),
            "-H" => {
                let h = value("-H")?;
                let (name, v) = h.split_once(':').ok_or_else(|| format!("header `{h}` is not `Name: value`"))?;
                headers.push((name.trim().to_string(), v.trim().to_string()));
            }
            "-d" => body = Some(value("-d")?.into_bytes()),
            "-i" => include = true,
            "-h" | "--help" => return Err(String::new()),
            other if other.starts_with('-') => return Err(format!("unknown option {other}")),
            other if url.is_none() => url = Some(other.to_string()),
            other => return Err(format!("one URL only (also got {other})")),
        }
    }
    let url = url.ok_or("give a URL")?;
    let method = method.unwrap_or_else(|| if body.is_some() { "POST".into() } else { "GET".into() });
    let request = Request::new(&url, method, headers, body.unwrap_or_default(), timeout)?;
    Ok((request, include))
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (request, include) = match parse(&args) {
        Ok(parsed) => parsed,
        Err(message) => {
            if !message.is_empty() {
                eprintln!("cubby-fetch: {message}");
            }
            eprintln!("{USAGE}");
            return ExitCode::from(2);
        }
    };
    match request.send() {
        Ok(response) => {
            let mut out = std::io::stdout().lock();
            let written = (|| {
                if include {
                    out.write_all(&response.head)?;
                }
                out.write_all(&response.body)?;
                out.flush()
            })();
            if let Err(e) = written {
                eprintln!("cubby-fetch: writing the answer: {e}");
                return ExitCode::from(1);
            }
            if response.status >= 400 {
                eprintln!("cubby-fetch: {} answered {}", request.url, response.status);
                ExitCode::from(22)
            } else {
                ExitCode::SUCCESS
            }
        }
        Err(failure) => {
            eprintln!("cubby-fetch: {}: {failure}", request.url);
            ExitCode::from(match failure {
                Failure::Resolve(_) => 6,
                Failure::Refused(_) => 7,
                Failure::TimedOut(_) => 28,
                Failure::Other(_) => 1,
            })
        }
    }
}
