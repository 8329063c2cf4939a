//! Who is asking: the admin, or a project token, and which token. Scoping
//! lives here so that a project token can never name another project's
//! resources: they answer "not found", exactly as if they did not exist.

use cubby_model::{ProjectId, TokenId};

/// What a caller may reach.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Scope {
    /// Every project.
    Admin,
    /// That project only.
    Project(ProjectId),
}

/// The authenticated identity behind a request: its scope, and the API
/// token it came with (none for the daemon's own calls, e.g. a script's
/// `ctx.cubby`, which acts for its project).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    scope: Scope,
    token: Option<TokenId>,
    script: Option<ScriptActor>,
}

/// An exec script acting through `ctx.cubby`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScriptActor {
    /// The script's file in its project's `scripts/`.
    pub file: String,
    /// Whether one of the project's events (`@on`) started the run, rather
    /// than a request to its URL.
    pub on_event: bool,
}

impl Caller {
    /// The admin (every project).
    pub fn admin() -> Self {
        Self { scope: Scope::Admin, token: None, script: None }
    }

    /// A caller limited to `project`.
    pub fn project(project: ProjectId) -> Self {
        Self { scope: Scope::Project(project), token: None, script: None }
    }

    /// The same caller, known to have come with token `token`.
    pub fn with_token(self, token: TokenId) -> Self {
        Self { token: Some(token), ..self }
    }

    /// The same caller, acting for the exec script `file` (`on_event`: a
    /// run an `@on` event started).
    pub fn by_script(self, file: &str, on_event: bool) -> Self {
        Self { script: Some(ScriptActor { file: file.to_owned(), on_event }), ..self }
    }

    /// The exec script the call comes from, if any.
    pub fn script(&self) -> Option<&ScriptActor> {
        self.script.as_ref()
    }

    /// The API token the call came with, if any: who asked, as events
    /// record it.
    pub fn token(&self) -> Option<&TokenId> {
        self.token.as_ref()
    }

    /// Whether the caller may see resources of `project`.
    pub fn can_access(&self, project: &ProjectId) -> bool {
        match &self.scope {
            Scope::Admin => true,
            Scope::Project(own) => own == project,
        }
    }

    /// The project the caller is limited to, if any.
    pub fn scope(&self) -> Option<&ProjectId> {
        match &self.scope {
            Scope::Admin => None,
            Scope::Project(p) => Some(p),
        }
    }

    /// Whether this is the admin.
    pub fn is_admin(&self) -> bool {
        matches!(self.scope, Scope::Admin)
    }
}
