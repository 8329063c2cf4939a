//! A typed, blocking client of the Cubby API. The CLI, the end-to-end tests
//! and the bench all talk to the daemon through it, so they exercise the
//! same HTTP surface users do.

use std::collections::BTreeMap;
use std::io::Read;
use std::time::Duration;

use cubby_model::{
    Alias, Authorization, AuthorizeRequest, Container, ContainerStats, ContainerUsage, CopyContainer, CreateAlias,
    CreateContainer, CreateProject, CreateSnapshot, CreateToken, CreateWebhook, CreatedToken, Direction, EnvValue,
    EventPage, ExecRequest, ExecResult, Firewall, FirewallRule, Image, NetworkRules, Page, Project, ProjectUsage,
    PublicKey, PutSecrets, RuleSpec, ScriptFile, ScriptInvocation, SecretNames, Snapshot, Token, Transition,
    UpdateContainer, UpdateProject, UpdateSnapshot, Webhook, WebhookDelivery,
};
use serde::Serialize;
use serde::de::DeserializeOwned;

/// Why a call failed.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The API answered with an error.
    #[error("{status} {code}: {message}")]
    Api { status: u16, code: String, message: String, details: Option<serde_json::Value> },
    /// The request did not get an answer.
    #[error("could not reach the Cubby API at {url}")]
    Transport {
        url: String,
        #[source]
        source: ureq::Error,
    },
    /// The answer was not what the API promises.
    #[error("unexpected answer from {url}: {detail}")]
    Decode { url: String, detail: String },
    /// A CA file that holds no usable certificate.
    #[error("no PEM certificate could be read from the CA file: {detail}")]
    CaFile { detail: String },
}

impl ClientError {
    /// The stable error code, if the API answered with one.
    pub fn code(&self) -> Option<&str> {
        match self {
            Self::Api { code, .. } => Some(code),
            _ => None,
        }
    }

    /// The HTTP status, if the API answered.
    pub fn status(&self) -> Option<u16> {
        match self {
            Self::Api { status, .. } => Some(*status),
            _ => None,
        }
    }
}

/// The HTTP agent: HTTPS with rustls on aws-lc-rs, checked against `roots`
/// (the Web PKI's when none are given).
fn agent(roots: Option<Vec<ureq::tls::Certificate<'static>>>) -> ureq::Agent {
    let mut tls = ureq::tls::TlsConfig::builder()
        .provider(ureq::tls::TlsProvider::Rustls)
        .unversioned_rustls_crypto_provider(std::sync::Arc::new(rustls::crypto::aws_lc_rs::default_provider()));
    if let Some(roots) = roots {
        tls = tls.root_certs(ureq::tls::RootCerts::Specific(std::sync::Arc::new(roots)));
    }
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(600)))
        .tls_config(tls.build())
        .build()
        .into()
}

/// A raw answer, for callers that check statuses and bodies themselves.
#[derive(Debug, Clone)]
pub struct RawResponse {
    pub status: u16,
    pub body: Vec<u8>,
}

impl RawResponse {
    /// The body as JSON.
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap_or(serde_json::Value::Null)
    }
}

/// A connection to one daemon with one token.
#[derive(Debug, Clone)]
pub struct Client {
    base: String,
    token: Option<String>,
    agent: ureq::Agent,
}

impl Client {
    /// A client of the API at `base` (like `http://127.0.0.1:7070`, or
    /// `https://…`, checked against the Web PKI's roots).
    pub fn new(base: impl Into<String>, token: Option<String>) -> Self {
        Self { base: base.into().trim_end_matches('/').to_string(), token, agent: agent(None) }
    }

    /// The same client, trusting only the CA certificates in `pem` for
    /// `https://` (a daemon with a certificate of your own CA).
    ///
    /// # Errors
    ///
    /// `pem` holds no certificate, or one that does not parse.
    pub fn with_ca_pem(self, pem: &[u8]) -> Result<Self, ClientError> {
        let mut roots = Vec::new();
        for item in ureq::tls::parse_pem(pem) {
            match item {
                Ok(ureq::tls::PemItem::Certificate(cert)) => roots.push(cert),
                Ok(_) => {}
                Err(e) => return Err(ClientError::CaFile { detail: e.to_string() }),
            }
        }
        if roots.is_empty() {
            return Err(ClientError::CaFile { detail: "it holds no CERTIFICATE block".into() });
        }
        Ok(Self { agent: agent(Some(roots)), ..self })
    }

    /// The same daemon with another token.
    pub fn with_token(&self, token: Option<String>) -> Self {
        Self { base: self.base.clone(), token, agent: self.agent.clone() }
    }

    /// The API's base address.
    pub fn base(&self) -> &str {
        &self.base
    }

    /// Sends any request and returns the status and body as they are.
    pub fn raw(&self, method: &str, path: &str, body: Option<&[u8]>) -> Result<RawResponse, ClientError> {
        let url = format!("{}{path}", self.base);
        let mut req = ureq::http::Request::builder().method(method).uri(&url);
        if let Some(token) = &self.token {
            req = req.header("Authorization", format!("Bearer {token}"));
        }
        if body.is_some() {
            req = req.header("Content-Type", "application/json");
        }
        // A large body waits for the daemon's go-ahead, so a refusal (too
        // large, no such project) comes back before it is all sent.
        if body.is_some_and(|b| b.len() > 64 << 10) {
            req = req.header("Expect", "100-continue");
        }
        let req = req
            .body(body.map(<[u8]>::to_vec).unwrap_or_default())
            .map_err(|e| ClientError::Decode { url: url.clone(), detail: e.to_string() })?;
        let mut resp = self.agent.run(req).map_err(|source| ClientError::Transport { url: url.clone(), source })?;
        let status = resp.status().as_u16();
        let body = resp
            .body_mut()
            .with_config()
            .limit(64 << 20)
            .read_to_vec()
            .map_err(|source| ClientError::Transport { url, source })?;
        Ok(RawResponse { status, body })
    }

    fn call<T: DeserializeOwned>(
        &self,
        method: &str,
        path: &str,
        body: Option<&impl Serialize>,
    ) -> Result<T, ClientError> {
        let payload = body.map(|b| serde_json::to_vec(b).expect("requests serialise"));
        let resp = self.raw(method, path, payload.as_deref())?;
        decode(&format!("{}{path}", self.base), resp)
    }

    fn call_empty(&self, method: &str, path: &str) -> Result<(), ClientError> {
        let resp = self.raw(method, path, None)?;
        if (200..300).contains(&resp.status) { Ok(()) } else { Err(api_error(&format!("{}{path}", self.base), &resp)) }
    }

    pub fn health(&self) -> Result<serde_json::Value, ClientError> {
        self.call("GET", "/api/v1/health", None::<&()>)
    }

    pub fn create_project(&self, req: &CreateProject) -> Result<Project, ClientError> {
        self.call("POST", "/api/v1/projects", Some(req))
    }

    /// Takes a backup of the whole box (admin token); answers when it is
    /// complete.
    pub fn backup(&self, req: &cubby_model::CreateBackup) -> Result<cubby_model::Backup, ClientError> {
        self.call("POST", "/api/v1/backups", Some(req))
    }

    /// Starts a rollout over a project's tenants; answers at once.
    pub fn create_rollout(
        &self,
        project: &str,
        req: &cubby_model::CreateRollout,
    ) -> Result<cubby_model::Rollout, ClientError> {
        self.call("POST", &format!("/api/v1/projects/{project}/rollouts"), Some(req))
    }

    /// One rollout and its progress.
    pub fn rollout(&self, project: &str, id: &str) -> Result<cubby_model::Rollout, ClientError> {
        self.call("GET", &format!("/api/v1/projects/{project}/rollouts/{id}"), None::<&()>)
    }

    pub fn projects(&self) -> Result<Vec<Project>, ClientError> {
        self.call("GET", "/api/v1/projects", None::<&()>)
    }

    pub fn project(&self, id: &str) -> Result<Project, ClientError> {
        self.call("GET", &format!("/api/v1/projects/{id}"), None::<&()>)
    }

    pub fn delete_project(&self, id: &str) -> Result<(), ClientError> {
        self.call_empty("DELETE", &format!("/api/v1/projects/{id}"))
    }

    pub fn create_token(&self, project: &str, req: &CreateToken) -> Result<CreatedToken, ClientError> {
        self.call("POST", &format!("/api/v1/projects/{project}/tokens"), Some(req))
    }

    pub fn tokens(&self, project: &str) -> Result<Vec<Token>, ClientError> {
        self.call("GET", &format!("/api/v1/projects/{project}/tokens"), None::<&()>)
    }

    pub fn create_container(&self, project: &str, req: &CreateContainer) -> Result<Container, ClientError> {
        self.call("POST", &format!("/api/v1/projects/{project}/containers"), Some(req))
    }

    /// One page of containers, of a project or of all visible ones.
    pub fn containers(
        &self,
        project: Option<&str>,
        cursor: Option<&str>,
        limit: u32,
    ) -> Result<Page<Container>, ClientError> {
        let mut path = match project {
            Some(p) => format!("/api/v1/projects/{p}/containers?limit={limit}"),
            None => format!("/api/v1/containers?limit={limit}"),
        };
        if let Some(c) = cursor {
            path.push_str(&format!("&cursor={c}"));
        }
        self.call("GET", &path, None::<&()>)
    }

    pub fn container(&self, id: &str) -> Result<Container, ClientError> {
        self.call("GET", &format!("/api/v1/containers/{id}"), None::<&()>)
    }

    pub fn delete_container(&self, id: &str) -> Result<(), ClientError> {
        self.call_empty("DELETE", &format!("/api/v1/containers/{id}"))
    }

    pub fn start(&self, id: &str) -> Result<Container, ClientError> {
        self.call("POST", &format!("/api/v1/containers/{id}/start"), None::<&()>)
    }

    pub fn stop(&self, id: &str) -> Result<Container, ClientError> {
        self.call("POST", &format!("/api/v1/containers/{id}/stop"), None::<&()>)
    }

    pub fn restart(&self, id: &str) -> Result<Container, ClientError> {
        self.call("POST", &format!("/api/v1/containers/{id}/restart"), None::<&()>)
    }

    pub fn exec(&self, id: &str, req: &ExecRequest) -> Result<ExecResult, ClientError> {
        self.call("POST", &format!("/api/v1/containers/{id}/exec"), Some(req))
    }

    /// Runs `argv` in the container with default options.
    pub fn exec_args(&self, id: &str, argv: &[&str]) -> Result<ExecResult, ClientError> {
        self.exec(id, &ExecRequest { command: argv.iter().map(|s| (*s).to_string()).collect(), ..Default::default() })
    }

    pub fn logs(&self, id: &str, tail_bytes: u64) -> Result<String, ClientError> {
        let path = format!("/api/v1/containers/{id}/logs?tail_bytes={tail_bytes}");
        let resp = self.raw("GET", &path, None)?;
        if resp.status == 200 {
            Ok(String::from_utf8_lossy(&resp.body).into_owned())
        } else {
            Err(api_error(&path, &resp))
        }
    }

    pub fn transitions(&self, id: &str) -> Result<Vec<Transition>, ClientError> {
        self.call("GET", &format!("/api/v1/containers/{id}/transitions"), None::<&()>)
    }

    pub fn copy_container(&self, source: &str, req: &CopyContainer) -> Result<Container, ClientError> {
        self.call("POST", &format!("/api/v1/containers/{source}/copy"), Some(req))
    }

    /// Pulls the template's newer files into copy `id`, keeping its `/data`.
    pub fn sync_container(&self, id: &str) -> Result<Container, ClientError> {
        self.call("POST", &format!("/api/v1/containers/{id}/sync"), None::<&()>)
    }

    pub fn update_container(&self, id: &str, req: &UpdateContainer) -> Result<Container, ClientError> {
        self.call("PATCH", &format!("/api/v1/containers/{id}"), Some(req))
    }

    pub fn create_snapshot(&self, id: &str, req: &CreateSnapshot) -> Result<Snapshot, ClientError> {
        self.call("POST", &format!("/api/v1/containers/{id}/snapshots"), Some(req))
    }

    pub fn snapshots(&self, id: &str) -> Result<Vec<Snapshot>, ClientError> {
        self.call("GET", &format!("/api/v1/containers/{id}/snapshots"), None::<&()>)
    }

    pub fn snapshot(&self, id: &str, name: &str) -> Result<Snapshot, ClientError> {
        self.call("GET", &format!("/api/v1/containers/{id}/snapshots/{name}"), None::<&()>)
    }

    pub fn restore_snapshot(&self, id: &str, name: &str) -> Result<Container, ClientError> {
        self.call("PUT", &format!("/api/v1/containers/{id}/snapshots/{name}"), None::<&()>)
    }

    pub fn update_snapshot(&self, id: &str, name: &str, req: &UpdateSnapshot) -> Result<Snapshot, ClientError> {
        self.call("PATCH", &format!("/api/v1/containers/{id}/snapshots/{name}"), Some(req))
    }

    pub fn delete_snapshot(&self, id: &str, name: &str) -> Result<(), ClientError> {
        self.call_empty("DELETE", &format!("/api/v1/containers/{id}/snapshots/{name}"))
    }

    pub fn delete_image(&self, name: &str) -> Result<(), ClientError> {
        self.call_empty("DELETE", &format!("/api/v1/images/{name}"))
    }

    pub fn update_project(&self, id: &str, req: &UpdateProject) -> Result<Project, ClientError> {
        self.call("PATCH", &format!("/api/v1/projects/{id}"), Some(req))
    }

    pub fn authorize(&self, id: &str, req: &AuthorizeRequest) -> Result<Authorization, ClientError> {
        self.call("POST", &format!("/api/v1/containers/{id}/authorize"), Some(req))
    }

    pub fn revoke_claims(&self, id: &str) -> Result<(), ClientError> {
        self.call_empty("POST", &format!("/api/v1/containers/{id}/revoke-claims"))
    }

    pub fn public_key(&self) -> Result<PublicKey, ClientError> {
        self.call("GET", "/api/v1/meta/public-key", None::<&()>)
    }

    /// What a container uses now.
    pub fn stats(&self, id: &str) -> Result<ContainerStats, ClientError> {
        self.call("GET", &format!("/api/v1/containers/{id}/stats"), None::<&()>)
    }

    /// What a container used; `query` is the query string without `?`
    /// (`from=…&to=…&step=…`, RFC 3339 times), empty for the last day.
    pub fn container_usage(&self, id: &str, query: &str) -> Result<ContainerUsage, ClientError> {
        self.call("GET", &format!("/api/v1/containers/{id}/usage?{query}"), None::<&()>)
    }

    /// What a project's containers used; `query` as for
    /// [`Client::container_usage`], plus `group_by=container`.
    pub fn project_usage(&self, id: &str, query: &str) -> Result<ProjectUsage, ClientError> {
        self.call("GET", &format!("/api/v1/projects/{id}/usage?{query}"), None::<&()>)
    }

    /// A page of events; `query` is the query string without `?`
    /// (`project_id`, `container_id`, `type`, `after`, `limit`).
    pub fn events(&self, query: &str) -> Result<EventPage, ClientError> {
        self.call("GET", &format!("/api/v1/events?{query}"), None::<&()>)
    }

    /// Makes a webhook for a project; the answer carries its secret, once.
    pub fn create_webhook(&self, project: &str, req: &CreateWebhook) -> Result<Webhook, ClientError> {
        self.call("POST", &format!("/api/v1/projects/{project}/webhooks"), Some(req))
    }

    /// A project's webhooks.
    pub fn webhooks(&self, project: &str) -> Result<Vec<Webhook>, ClientError> {
        self.call("GET", &format!("/api/v1/projects/{project}/webhooks"), None::<&()>)
    }

    /// Removes a webhook and its delivery log.
    pub fn delete_webhook(&self, project: &str, id: &str) -> Result<(), ClientError> {
        self.call_empty("DELETE", &format!("/api/v1/projects/{project}/webhooks/{id}"))
    }

    /// A webhook's latest deliveries.
    pub fn webhook_deliveries(&self, project: &str, id: &str) -> Result<Vec<WebhookDelivery>, ClientError> {
        self.call("GET", &format!("/api/v1/projects/{project}/webhooks/{id}/deliveries"), None::<&()>)
    }

    /// A container's env vars.
    pub fn env(&self, id: &str) -> Result<BTreeMap<String, String>, ClientError> {
        self.call("GET", &format!("/api/v1/containers/{id}/env"), None::<&()>)
    }

    /// Replaces all of a container's env vars.
    pub fn replace_env(
        &self,
        id: &str,
        env: &BTreeMap<String, String>,
        restart: bool,
    ) -> Result<BTreeMap<String, String>, ClientError> {
        self.call("PUT", &format!("/api/v1/containers/{id}/env?restart={restart}"), Some(env))
    }

    /// Sets one env var.
    pub fn set_env_var(
        &self,
        id: &str,
        key: &str,
        value: &str,
        restart: bool,
    ) -> Result<BTreeMap<String, String>, ClientError> {
        let body = EnvValue { value: value.to_string() };
        self.call("PUT", &format!("/api/v1/containers/{id}/env/{key}?restart={restart}"), Some(&body))
    }

    /// Removes one env var.
    pub fn delete_env_var(&self, id: &str, key: &str, restart: bool) -> Result<(), ClientError> {
        self.call_empty("DELETE", &format!("/api/v1/containers/{id}/env/{key}?restart={restart}"))
    }

    /// A container's firewall rules.
    pub fn firewall(&self, id: &str) -> Result<Firewall, ClientError> {
        self.call("GET", &format!("/api/v1/containers/{id}/firewall"), None::<&()>)
    }

    /// Adds a rule (`direction` is `ingress` or `egress`).
    pub fn add_rule(&self, id: &str, direction: Direction, spec: &RuleSpec) -> Result<FirewallRule, ClientError> {
        self.call("POST", &format!("/api/v1/containers/{id}/firewall/{}", direction.as_str()), Some(spec))
    }

    /// Removes one rule.
    pub fn delete_rule(&self, id: &str, direction: Direction, rule: &str) -> Result<(), ClientError> {
        self.call_empty("DELETE", &format!("/api/v1/containers/{id}/firewall/{}/{rule}", direction.as_str()))
    }

    /// Goes back to the default rules.
    pub fn reset_firewall(&self, id: &str) -> Result<Firewall, ClientError> {
        self.call("POST", &format!("/api/v1/containers/{id}/firewall/reset"), None::<&()>)
    }

    /// A container's network rules.
    pub fn network(&self, id: &str) -> Result<NetworkRules, ClientError> {
        self.call("GET", &format!("/api/v1/containers/{id}/network"), None::<&()>)
    }

    /// Replaces a container's network rules.
    pub fn set_network(&self, id: &str, rules: &NetworkRules) -> Result<NetworkRules, ClientError> {
        self.call("PUT", &format!("/api/v1/containers/{id}/network"), Some(rules))
    }

    pub fn create_alias(&self, req: &CreateAlias) -> Result<Alias, ClientError> {
        self.call("POST", "/api/v1/aliases", Some(req))
    }

    pub fn aliases(&self) -> Result<Vec<Alias>, ClientError> {
        self.call("GET", "/api/v1/aliases", None::<&()>)
    }

    pub fn delete_alias(&self, name: &str) -> Result<(), ClientError> {
        self.call_empty("DELETE", &format!("/api/v1/aliases/{name}"))
    }

    /// Writes one script file of a project.
    pub fn put_script(&self, project: &str, path: &str, content: &[u8]) -> Result<ScriptFile, ClientError> {
        let api = format!("/api/v1/projects/{project}/scripts/{path}");
        let resp = self.raw("PUT", &api, Some(content))?;
        decode(&format!("{}{api}", self.base), resp)
    }

    /// One script's content.
    pub fn script(&self, project: &str, path: &str) -> Result<Vec<u8>, ClientError> {
        let api = format!("/api/v1/projects/{project}/scripts/{path}");
        let resp = self.raw("GET", &api, None)?;
        if resp.status == 200 { Ok(resp.body) } else { Err(api_error(&format!("{}{api}", self.base), &resp)) }
    }

    pub fn scripts(&self, project: &str) -> Result<Vec<ScriptFile>, ClientError> {
        self.call("GET", &format!("/api/v1/projects/{project}/scripts"), None::<&()>)
    }

    pub fn delete_script(&self, project: &str, path: &str) -> Result<(), ClientError> {
        self.call_empty("DELETE", &format!("/api/v1/projects/{project}/scripts/{path}"))
    }

    pub fn script_logs(&self, project: &str, limit: u32) -> Result<Vec<ScriptInvocation>, ClientError> {
        self.call("GET", &format!("/api/v1/projects/{project}/scripts/logs?limit={limit}"), None::<&()>)
    }

    /// Replaces a project's secrets.
    pub fn put_secrets(&self, project: &str, secrets: &PutSecrets) -> Result<SecretNames, ClientError> {
        self.call("PUT", &format!("/api/v1/projects/{project}/secrets"), Some(secrets))
    }

    pub fn secrets(&self, project: &str) -> Result<SecretNames, ClientError> {
        self.call("GET", &format!("/api/v1/projects/{project}/secrets"), None::<&()>)
    }

    pub fn images(&self) -> Result<Vec<Image>, ClientError> {
        self.call("GET", "/api/v1/images", None::<&()>)
    }

    /// Streams a rootfs tarball to the daemon as image `name`.
    pub fn import_image(&self, name: &str, archive: impl Read + Send + Sync + 'static) -> Result<Image, ClientError> {
        self.post_stream(&format!("/api/v1/images?name={name}"), archive)
    }

    /// POSTs `body` streamed (`application/octet-stream`) to `path`. With
    /// 100-continue the daemon can refuse (a name taken, a token that may
    /// not) before a large body is sent.
    fn post_stream<T: serde::de::DeserializeOwned>(
        &self,
        path: &str,
        body: impl Read + Send + Sync + 'static,
    ) -> Result<T, ClientError> {
        let url = format!("{}{path}", self.base);
        let mut req =
            self.agent.post(&url).header("Content-Type", "application/octet-stream").header("Expect", "100-continue");
        if let Some(token) = &self.token {
            req = req.header("Authorization", &format!("Bearer {token}"));
        }
        let mut body = body;
        let mut resp = req
            .send(ureq::SendBody::from_reader(&mut body))
            .map_err(|source| ClientError::Transport { url: url.clone(), source })?;
        let status = resp.status().as_u16();
        let body =
            resp.body_mut().read_to_vec().map_err(|source| ClientError::Transport { url: url.clone(), source })?;
        decode(&url, RawResponse { status, body })
    }

    /// Streams container `id`'s export archive (tar + zstd) into `out`;
    /// `query` is the export's query string (`full=true`, `data_only=true`,
    /// `include_env=true`, `&`-joined, or empty). Returns the bytes written.
    pub fn export_container(&self, id: &str, query: &str, out: &mut dyn std::io::Write) -> Result<u64, ClientError> {
        let url = format!("{}/api/v1/containers/{id}/export?{query}", self.base);
        let mut req = self.agent.get(&url);
        if let Some(token) = &self.token {
            req = req.header("Authorization", &format!("Bearer {token}"));
        }
        let mut resp = req.call().map_err(|source| ClientError::Transport { url: url.clone(), source })?;
        let status = resp.status().as_u16();
        if !(200..300).contains(&status) {
            let body =
                resp.body_mut().read_to_vec().map_err(|source| ClientError::Transport { url: url.clone(), source })?;
            return Err(api_error(&url, &RawResponse { status, body }));
        }
        // No size limit: an export is as large as the tenant.
        let mut reader = resp.body_mut().as_reader();
        std::io::copy(&mut reader, out)
            .map_err(|e| ClientError::Transport { url: url.clone(), source: ureq::Error::Io(e) })
    }

    /// Makes a container in `project` from an export archive (`name`: the
    /// exported one's when `None`).
    pub fn import_container(
        &self,
        project: &str,
        name: Option<&str>,
        archive: impl Read + Send + Sync + 'static,
    ) -> Result<Container, ClientError> {
        let query = name.map(|n| format!("?name={n}")).unwrap_or_default();
        self.post_stream(&format!("/api/v1/projects/{project}/import{query}"), archive)
    }
}

fn api_error(url: &str, resp: &RawResponse) -> ClientError {
    let v = resp.json();
    match (v["error"]["code"].as_str(), v["error"]["message"].as_str()) {
        (Some(code), Some(message)) => ClientError::Api {
            status: resp.status,
            code: code.to_string(),
            message: message.to_string(),
            details: v["error"].get("details").cloned(),
        },
        _ => ClientError::Decode {
            url: url.to_string(),
            detail: format!("status {} with body {}", resp.status, String::from_utf8_lossy(&resp.body)),
        },
    }
}

fn decode<T: DeserializeOwned>(url: &str, resp: RawResponse) -> Result<T, ClientError> {
    if !(200..300).contains(&resp.status) {
        return Err(api_error(url, &resp));
    }
    serde_json::from_slice(&resp.body).map_err(|e| ClientError::Decode { url: url.to_string(), detail: e.to_string() })
}
