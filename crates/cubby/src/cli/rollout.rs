//! `cubby rollout`: one upgrade over many tenants of a project.

use std::time::Duration;

use clap::Args;
use cubby_model::{ContainerId, CreateRollout, RolloutStatus};

use super::Connection;
use super::output::print_one;

#[derive(Debug, Args)]
pub struct RolloutArgs {
    /// The project.
    pub project: String,
    /// Sync every copy of this template container.
    #[arg(long, conflicts_with = "image", required_unless_present = "image")]
    pub template: Option<String>,
    /// Move the tenants onto this image.
    #[arg(long)]
    pub image: Option<String>,
    /// With --image: only the tenants on this image.
    #[arg(long, requires = "image")]
    pub from_image: Option<String>,
    /// Tenants per batch (default 5).
    #[arg(long)]
    pub batch_size: Option<u32>,
    /// Most tenants of a batch stopped at once (default: the batch size).
    #[arg(long)]
    pub max_unavailable: Option<u32>,
    /// Wait for it to end; exit 1 when it failed.
    #[arg(long)]
    pub wait: bool,
    #[command(flatten)]
    pub c: Connection,
}

pub fn run(a: RolloutArgs) -> anyhow::Result<std::process::ExitCode> {
    let client = a.c.client()?;
    let req = CreateRollout {
        template: a.template.map(ContainerId::from_stored),
        image: a.image,
        from_image: a.from_image,
        batch_size: a.batch_size,
        max_unavailable: a.max_unavailable,
    };
    let mut rollout = client.create_rollout(&a.project, &req)?;
    while a.wait && rollout.status == RolloutStatus::Running {
        std::thread::sleep(Duration::from_millis(500));
        rollout = client.rollout(&a.project, rollout.id.as_str())?;
    }
    print_one(a.c.json, &rollout);
    Ok(if rollout.status == RolloutStatus::Failed {
        std::process::ExitCode::FAILURE
    } else {
        std::process::ExitCode::SUCCESS
    })
}
