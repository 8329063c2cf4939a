//! `cubby events`: what happened to tenants, as a table (`--follow` keeps
//! printing new ones), and `cubby webhooks`: where a project's events are
//! sent.

use clap::{Args, Subcommand};
use cubby_model::{CreateWebhook, Event, EventType};

use super::output::print;
use super::{Connection, Target};

#[derive(Debug, Args)]
pub struct EventsArgs {
    /// Only this project's.
    #[arg(long)]
    pub project: Option<String>,
    /// Only this container's.
    #[arg(long)]
    pub container: Option<String>,
    /// Only this type, e.g. container.exited.
    #[arg(long = "type")]
    pub kind: Option<String>,
    /// Keep printing new events (every second) until interrupted.
    #[arg(long, short)]
    pub follow: bool,
    #[command(flatten)]
    pub c: Connection,
}

fn row(e: &Event) -> Vec<String> {
    vec![
        e.id.to_string(),
        e.at.format(&time::format_description::well_known::Rfc3339).unwrap_or_default(),
        e.kind.as_str().to_owned(),
        e.container_id.as_ref().map(ToString::to_string).unwrap_or_default(),
        e.trigger.map(|t| t.as_str().to_owned()).unwrap_or_default(),
        e.actor.clone().unwrap_or_default(),
        if e.data.as_object().is_some_and(|m| m.is_empty()) { String::new() } else { e.data.to_string() },
    ]
}

pub fn run(a: EventsArgs) -> anyhow::Result<std::process::ExitCode> {
    let client = a.c.client()?;
    let mut filter = Vec::new();
    for (key, value) in [("project_id", &a.project), ("container_id", &a.container), ("type", &a.kind)] {
        if let Some(v) = value {
            filter.push(format!("{key}={v}"));
        }
    }
    let header = ["ID", "AT", "TYPE", "CONTAINER", "TRIGGER", "ACTOR", "DATA"];
    let mut after = 0u64;
    loop {
        let mut query = filter.clone();
        query.push(format!("after={after}"));
        query.push("limit=500".into());
        let page = client.events(&query.join("&"))?;
        if let Some(last) = page.items.last() {
            after = last.id;
        }
        if !page.items.is_empty() || !a.follow {
            print(a.c.json, &page.items, &header, row);
        }
        if !a.follow {
            return Ok(std::process::ExitCode::SUCCESS);
        }
        std::thread::sleep(std::time::Duration::from_secs(1));
    }
}

#[derive(Debug, Subcommand)]
pub enum WebhooksCommand {
    /// A project's webhooks.
    List(Target),
    /// POST a project's events to a URL, signed; prints the secret once.
    Create {
        /// Project id.
        project: String,
        url: String,
        /// Only these event types (repeat the flag); default all.
        #[arg(long = "event", value_parser = parse_event)]
        events: Vec<EventType>,
        /// The signing secret (default: a random one).
        #[arg(long)]
        secret: Option<String>,
        #[arg(long)]
        description: Option<String>,
        #[command(flatten)]
        c: Connection,
    },
    /// Remove a webhook.
    Delete {
        project: String,
        webhook: String,
        #[command(flatten)]
        c: Connection,
    },
    /// A webhook's latest deliveries.
    Deliveries {
        project: String,
        webhook: String,
        #[command(flatten)]
        c: Connection,
    },
}

fn parse_event(s: &str) -> anyhow::Result<EventType> {
    EventType::parse(s).ok_or_else(|| {
        let known: Vec<&str> = EventType::ALL.iter().map(|t| t.as_str()).collect();
        anyhow::anyhow!("`{s}` is not an event type: use one of {}", known.join(", "))
    })
}

pub fn webhooks(cmd: WebhooksCommand) -> anyhow::Result<std::process::ExitCode> {
    let hook_row = |w: &cubby_model::Webhook| {
        let events: Vec<&str> = w.events.iter().map(|e| e.as_str()).collect();
        vec![
            w.id.to_string(),
            w.url.clone(),
            if events.is_empty() { "all".into() } else { events.join(",") },
            w.secret.clone().unwrap_or_default(),
        ]
    };
    let header = ["ID", "URL", "EVENTS", "SECRET"];
    match cmd {
        WebhooksCommand::List(Target { id, c }) => print(c.json, &c.client()?.webhooks(&id)?, &header, hook_row),
        WebhooksCommand::Create { project, url, events, secret, description, c } => {
            let made = c.client()?.create_webhook(&project, &CreateWebhook { url, events, secret, description })?;
            print(c.json, &[made], &header, hook_row);
        }
        WebhooksCommand::Delete { project, webhook, c } => c.client()?.delete_webhook(&project, &webhook)?,
        WebhooksCommand::Deliveries { project, webhook, c } => {
            let header = ["ID", "EVENT", "TYPE", "STATUS", "ATTEMPTS", "LAST", "NEXT"];
            print(c.json, &c.client()?.webhook_deliveries(&project, &webhook)?, &header, |d| {
                vec![
                    d.id.to_string(),
                    d.event_id.to_string(),
                    d.event_type.as_str().to_owned(),
                    d.status.as_str().to_owned(),
                    d.attempts.to_string(),
                    d.last_status_code.map(|c| c.to_string()).or_else(|| d.last_error.clone()).unwrap_or_default(),
                    d.next_attempt_at
                        .and_then(|t| t.format(&time::format_description::well_known::Rfc3339).ok())
                        .unwrap_or_default(),
                ]
            });
        }
    }
    Ok(std::process::ExitCode::SUCCESS)
}
