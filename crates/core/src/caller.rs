//! Who is asking: the admin, or a project token. Scoping lives here so
//! that a project token can never name another project's resources: they
//! answer "not found", exactly as if they did not exist.

use cubby_model::ProjectId;

/// The authenticated identity behind a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Caller {
    /// The admin token: every project.
    Admin,
    /// A project token: that project only.
    Project(ProjectId),
}

impl Caller {
    /// Whether the caller may see resources of `project`.
    pub fn can_access(&self, project: &ProjectId) -> bool {
        match self {
            Self::Admin => true,
            Self::Project(own) => own == project,
        }
    }

    /// The project the caller is limited to, if any.
    pub fn project(&self) -> Option<&ProjectId> {
        match self {
            Self::Admin => None,
            Self::Project(p) => Some(p),
        }
    }

    /// Whether this is the admin.
    pub fn is_admin(&self) -> bool {
        matches!(self, Self::Admin)
    }
}
