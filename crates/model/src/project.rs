//! Projects: one per customer of Cubby (a SaaS company). Containers and
//! project tokens belong to exactly one.

use serde::{Deserialize, Serialize};

use crate::{AccessMode, ByteSize, Limits, LimitsSpec, ProjectId, Timestamp, ValidationError};

/// What the operator lets each container of a project have. Set with the
/// admin token only: a project token can neither raise it nor ask its
/// containers for more. A limit left out is the daemon's.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct ProjectQuota {
    /// Most CPU per container, in cores.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_cpu: Option<f64>,
    /// Most memory per container: bytes, or a string like "1GiB".
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<u64>))]
    pub max_memory: Option<ByteSize>,
    /// Most disk per container; its containers always have a disk limit.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<u64>))]
    pub max_disk: Option<ByteSize>,
    /// Disk limit of containers that ask for none (else `max_disk`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<u64>))]
    pub default_disk: Option<ByteSize>,
}

impl ProjectQuota {
    /// Checks the quota itself.
    pub fn validate(&self) -> Result<(), ValidationError> {
        if self.max_cpu.is_some_and(|c| !(c.is_finite() && c > 0.0)) {
            return Err(ValidationError::new("quota.max_cpu", "give a number of cores above 0"));
        }
        if let (Some(default), Some(max)) = (self.default_disk, self.max_disk)
            && default.0 > max.0
        {
            return Err(ValidationError::new("quota.default_disk", format!("{default} is above max_disk ({max})")));
        }
        Ok(())
    }

    /// `base` (the daemon's defaults, or a template's limits) brought
    /// within the quota, with the quota's disk limit where it has none.
    pub fn clamp(&self, mut base: Limits) -> Limits {
        if let Some(cpu) = self.max_cpu {
            base.cpu = base.cpu.min(cpu);
        }
        if let Some(memory) = self.max_memory {
            base.memory = ByteSize(base.memory.0.min(memory.0));
        }
        base.disk = match (base.disk, self.max_disk) {
            (Some(d), Some(max)) => Some(ByteSize(d.0.min(max.0))),
            (None, max) => self.default_disk.or(max),
            (d, None) => d,
        };
        base
    }

    /// Checks what a request asks for against the quota.
    pub fn check(&self, spec: &LimitsSpec) -> Result<(), ValidationError> {
        let over = |field: &str, asked: String, max: String| {
            Err(ValidationError::new(
                field,
                format!("{asked} is above this project's quota of {max}: ask for less, or ask the operator"),
            ))
        };
        if let (Some(asked), Some(max)) = (spec.cpu, self.max_cpu)
            && asked > max
        {
            return over("limits.cpu", format!("{asked} cores"), format!("{max} cores"));
        }
        if let (Some(asked), Some(max)) = (spec.memory, self.max_memory)
            && asked.0 > max.0
        {
            return over("limits.memory", asked.to_string(), max.to_string());
        }
        if let (Some(asked), Some(max)) = (spec.disk, self.max_disk)
            && asked.0 > max.0
        {
            return over("limits.disk", asked.to_string(), max.to_string());
        }
        Ok(())
    }
}

/// A project, as the API shows it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Project {
    pub id: ProjectId,
    /// Unique on the daemon; part of its containers' URLs.
    pub name: String,
    /// Most containers it may hold; unlimited when absent.
    pub max_containers: Option<u32>,
    /// Access mode of its containers that do not set one.
    pub default_access: AccessMode,
    /// Idle timeout of its containers that do not set one (0: never stop).
    pub default_idle_timeout_seconds: u32,
    /// What each of its containers may have (admin only).
    #[serde(default)]
    pub quota: ProjectQuota,
    #[serde(with = "time::serde::rfc3339")]
    #[cfg_attr(feature = "openapi", schema(value_type = String, format = DateTime))]
    pub created_at: Timestamp,
}

/// The body of `POST /api/v1/projects`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct CreateProject {
    /// 1 to 20 lowercase letters, digits and hyphens, not ending in `-<digits>`.
    pub name: String,
    #[serde(default)]
    pub max_containers: Option<u32>,
    /// `claim` when left out.
    #[serde(default)]
    pub default_access: Option<AccessMode>,
    /// 0 (never) when left out.
    #[serde(default)]
    pub default_idle_timeout_seconds: Option<u32>,
    /// What each of its containers may have; the daemon's limits when left out.
    #[serde(default)]
    pub quota: Option<ProjectQuota>,
}

/// The body of `PATCH /api/v1/projects/{id}` (admin token).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct UpdateProject {
    #[serde(default)]
    pub max_containers: Option<u32>,
    #[serde(default)]
    pub default_access: Option<AccessMode>,
    #[serde(default)]
    pub default_idle_timeout_seconds: Option<u32>,
    /// Replaces the quota as a whole. Containers keep their limits until
    /// they are changed.
    #[serde(default)]
    pub quota: Option<ProjectQuota>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quotas_clamp_defaults_and_refuse_asks_above_them() {
        let q = ProjectQuota {
            max_cpu: Some(0.5),
            max_memory: Some(ByteSize(256 << 20)),
            max_disk: Some(ByteSize(1 << 30)),
            default_disk: Some(ByteSize(256 << 20)),
        };
        q.validate().unwrap();
        let base = Limits { cpu: 1.0, memory: ByteSize(512 << 20), pids: 512, disk: None };
        let clamped = q.clamp(base);
        assert_eq!((clamped.cpu, clamped.memory, clamped.disk), (0.5, ByteSize(256 << 20), Some(ByteSize(256 << 20))));
        assert_eq!(ProjectQuota::default().clamp(base), base, "no quota, no change");
        let too_much = LimitsSpec { memory: Some(ByteSize(1 << 30)), ..Default::default() };
        let err = q.check(&too_much).unwrap_err();
        assert_eq!(err.field, "limits.memory");
        assert!(err.message.contains("quota"), "{}", err.message);
        q.check(&LimitsSpec { cpu: Some(0.25), disk: Some(ByteSize(1 << 30)), ..Default::default() }).unwrap();
        let bad = ProjectQuota { default_disk: Some(ByteSize(2 << 30)), ..q };
        assert!(bad.validate().is_err());
    }
}
