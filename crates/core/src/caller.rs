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
}

impl Caller {
    /// The admin (every project).
    pub fn admin() -> Self {
        Self { scope: Scope::Admin, token: None }
    }

    /// A caller limited to `project`.
    pub fn project(project: ProjectId) -> Self {
        Self { scope: Scope::Project(project), token: None }
    }

    /// The same caller, known to have come with token `token`.
    pub fn with_token(self, token: TokenId) -> Self {
        Self { token: Some(token), ..self }
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
