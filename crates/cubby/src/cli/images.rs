//! `cubby images ...`

use std::path::PathBuf;

use anyhow::Context;
use clap::Subcommand;

use super::output::{print, print_one};
use super::{Connection, Named};

#[derive(Debug, Subcommand)]
pub enum ImagesCommand {
    /// List images.
    List {
        #[command(flatten)]
        c: Connection,
    },
    /// Delete an image (containers made from it keep working).
    Delete(Named),
    /// Import an OCI image archive (docker save, oci-archive) or a rootfs
    /// tarball (plain, gzip or zstd) as an image.
    Import {
        file: PathBuf,
        #[arg(long)]
        name: String,
        #[command(flatten)]
        c: Connection,
    },
}

pub fn run(cmd: ImagesCommand) -> anyhow::Result<std::process::ExitCode> {
    match cmd {
        ImagesCommand::List { c } => {
            let images = c.client()?.images()?;
            print(c.json, &images, &["NAME", "SOURCE", "SIZE", "COMMAND", "CREATED"], |i| {
                vec![
                    i.name.clone(),
                    i.source.as_str().to_string(),
                    cubby_model::ByteSize(i.size_bytes).to_string(),
                    i.config.command.join(" "),
                    i.created_at.to_string(),
                ]
            });
        }
        ImagesCommand::Delete(Named { name, c }) => {
            c.client()?.delete_image(&name)?;
            if !c.json {
                println!("deleted image {name}");
            }
        }
        ImagesCommand::Import { file, name, c } => {
            let f = std::fs::File::open(&file).with_context(|| format!("opening {}", file.display()))?;
            print_one(c.json, &c.client()?.import_image(&name, f)?);
        }
    }
    Ok(std::process::ExitCode::SUCCESS)
}
