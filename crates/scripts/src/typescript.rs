//! TypeScript to JavaScript: type stripping with oxc (parse, semantic
//! scoping, the TypeScript transform, codegen). No lowering: the output is
//! an ES module for QuickJS, which runs modern JavaScript as is.

use std::path::Path;

use oxc::allocator::Allocator;
use oxc::codegen::Codegen;
use oxc::diagnostics::OxcDiagnostic;
use oxc::parser::Parser;
use oxc::semantic::SemanticBuilder;
use oxc::span::SourceType;
use oxc::transformer::{TransformOptions, Transformer};

/// One problem found while turning TypeScript into JavaScript.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TranspileProblem {
    /// 1-based line in the TypeScript source (0 when the problem has no place).
    pub line: usize,
    /// 1-based column, counted in characters.
    pub column: usize,
    /// What the compiler said, with its hint if it gave one.
    pub message: String,
}

impl std::fmt::Display for TranspileProblem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.line == 0 {
            write!(f, "{}", self.message)
        } else {
            write!(f, "{}:{}: {}", self.line, self.column, self.message)
        }
    }
}

/// The TypeScript source could not be turned into JavaScript.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{file}:{}", first_problem(.problems))]
pub struct TranspileError {
    /// The file name given to [`strip_types`].
    pub file: String,
    /// Every problem, in source order; the first is in the message.
    pub problems: Vec<TranspileProblem>,
}

fn first_problem(problems: &[TranspileProblem]) -> String {
    let Some(first) = problems.first() else {
        return " could not be compiled".to_owned();
    };
    let more = match problems.len() {
        1 => String::new(),
        n => format!(" (and {} more problems)", n - 1),
    };
    format!("{first}{more}")
}

/// Turns TypeScript into a plain JavaScript ES module by removing its types.
///
/// `file_name` picks the dialect by extension (`.ts`, `.mts`, `.cts`, `.tsx`;
/// anything else is read as `.ts`) and names the file in errors.
///
/// What happens to TypeScript-only syntax: interfaces, type aliases,
/// annotations, generics, `as`/`satisfies`/`!`, `declare` and
/// `import type`/`export type` are removed; imports used only as types are
/// removed too. `enum`s (including `const enum`) and namespaces are
/// transformed into plain objects by oxc's TypeScript transform, so they work.
/// Parameter properties (`constructor(private x)`) become assignments. JSX in
/// `.tsx` files is compiled for React's automatic runtime, whose import the
/// engine then refuses, so JSX is in effect unsupported.
///
/// Line numbers of runtime errors refer to the generated JavaScript, which
/// keeps the statements in order but not their exact lines.
///
/// # Errors
///
/// Syntax errors (and the few errors the transform reports), each with its
/// line and column in the TypeScript source.
pub fn strip_types(source: &str, file_name: &str) -> Result<String, TranspileError> {
    let allocator = Allocator::default();
    let source_type = SourceType::from_path(file_name)
        .ok()
        .filter(|ty| ty.is_typescript())
        .unwrap_or_else(SourceType::ts)
        .with_module(true);
    let fail = |diagnostics: &[OxcDiagnostic]| TranspileError {
        file: file_name.to_owned(),
        problems: diagnostics.iter().map(|diagnostic| problem(source, diagnostic)).collect(),
    };

    let parsed = Parser::new(&allocator, source, source_type).parse();
    if parsed.panicked || parsed.diagnostics.has_errors() {
        return Err(fail(&parsed.diagnostics));
    }
    let mut program = parsed.program;

    let semantic = SemanticBuilder::new()
        .with_check_syntax_error(true)
        // The transform adds scopes and symbols; the enum transform needs
        // the members' values computed here.
        .with_excess_capacity(2.0)
        .with_enum_eval(true)
        .build(&program);
    if semantic.diagnostics.has_errors() {
        return Err(fail(&semantic.diagnostics));
    }
    let scoping = semantic.semantic.into_scoping();

    let options = TransformOptions::default();
    let transformed =
        Transformer::new(&allocator, Path::new(file_name), &options).build_with_scoping(scoping, &mut program);
    if transformed.diagnostics.has_errors() {
        return Err(fail(&transformed.diagnostics));
    }
    Ok(Codegen::new().build(&program).code)
}

fn problem(source: &str, diagnostic: &OxcDiagnostic) -> TranspileProblem {
    let mut message = diagnostic.message.to_string();
    if let Some(help) = &diagnostic.help {
        message.push_str(" (");
        message.push_str(help);
        message.push(')');
    }
    let offset = diagnostic.labels.iter().map(|label| label.offset()).min();
    let (line, column) = match offset {
        Some(offset) => line_column(source, usize::try_from(offset).unwrap_or(usize::MAX)),
        None => (0, 0),
    };
    TranspileProblem { line, column, message }
}

/// 1-based line and character column of a byte offset.
fn line_column(source: &str, offset: usize) -> (usize, usize) {
    let mut end = offset.min(source.len());
    while !source.is_char_boundary(end) {
        end -= 1;
    }
    let before = &source[..end];
    let line = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    let column = before[line_start..].chars().count() + 1;
    (line, column)
}

#[cfg(test)]
mod tests {
    use super::*;

    const REALISTIC: &str = r#"// @timeout 5000
import type { Incoming } from "./types";

interface SignupBody {
  email: string;
  plan?: "free" | "pro";
  tags: Array<string>;
}

type Answer<T> = { ok: boolean; data: T };

enum Plan { Free = "free", Pro = "pro" }

function pick<T extends object, K extends keyof T>(obj: T, key: K): T[K] {
  return obj[key];
}

class Counter<T> {
  private count: number = 0;
  constructor(public readonly label: string) {}
  bump(by: number = 1): number {
    this.count += by;
    return this.count;
  }
}

export default async function handler(request: Request, ctx: any): Promise<Response> {
  const body = (await request.json()) as SignupBody;
  const plan = body.plan ?? Plan.Free;
  const counter = new Counter<string>("signups");
  const n = counter.bump(2)!;
  const answer: Answer<string> = { ok: true, data: pick(body, "email") };
  const list = <string[]>body.tags;
  return Response.json({ answer, plan, n, label: counter.label, tags: list.length } satisfies object);
}
"#;

    #[test]
    fn strips_a_realistic_file() {
        let js = strip_types(REALISTIC, "webhooks/signup.ts").unwrap();
        for gone in [
            "interface",
            "import type",
            "SignupBody",
            ": string",
            ": number",
            "Promise<Response>",
            "satisfies",
            "<string>",
            " as ",
            "private",
            "keyof",
        ] {
            assert!(!js.contains(gone), "`{gone}` left in:\n{js}");
        }
        assert!(js.contains("export default async function handler(request, ctx)"), "{js}");
        assert!(js.contains("Plan"), "{js}");
        assert!(js.contains("this.label = label"), "{js}");
    }

    #[test]
    fn stripped_output_is_fast() {
        // About 200 lines: the realistic file five times, renamed apart.
        let big: String = (0..5)
            .map(|i| {
                let mut copy = REALISTIC.replace("export default async function", "async function");
                for name in ["Incoming", "SignupBody", "Answer", "Plan", "pick", "Counter", "handler"] {
                    copy = copy.replace(name, &format!("{name}{i}"));
                }
                copy
            })
            .collect();
        let started = std::time::Instant::now();
        let js = strip_types(&big, "big.ts").unwrap();
        let elapsed = started.elapsed();
        println!("strip_types: {} lines in {elapsed:?}", big.lines().count());
        assert!(js.contains("function handler4"));
        // Debug builds are much slower than release; this only catches pathologies.
        assert!(elapsed < std::time::Duration::from_secs(2));
    }

    #[test]
    fn syntax_errors_have_line_and_column() {
        let err = strip_types("const a: number = 1;\nlet b = (;\n", "bad.ts").unwrap_err();
        assert_eq!(err.file, "bad.ts");
        let first = &err.problems[0];
        assert_eq!((first.line, first.column), (2, 10), "{err}");
        assert!(err.to_string().starts_with("bad.ts:2:10: "), "{err}");
    }

    #[test]
    fn line_column_counts_characters() {
        assert_eq!(line_column("ab\ncé d", 7), (2, 4));
        assert_eq!(line_column("abc", 0), (1, 1));
        assert_eq!(line_column("abc", 99), (1, 4));
    }
}
