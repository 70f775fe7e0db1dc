//! `tessera.toml`: the serde model of the file and its validation into a typed
//! [`Config`].
//!
//! Parsing is strict (`deny_unknown_fields` everywhere) and reports every
//! problem of the file at once: [`read`] reads each section and entry on its
//! own, and validation goes on past each problem it finds. Each problem names
//! the key (`clients[acme-sync].secret_hash`) and what to do about it; an
//! entry with problems of its own still counts as existing for references to
//! it, so one mistake is reported once. Secrets referenced by the file (environment
//! variables, files) are read here, once: a client secret is kept only as its
//! SHA-256 hash, and plugin secrets are wrapped so they never print.
//!
//! Nothing here touches the network, the store or WebAssembly; plugin files are
//! loaded by [`crate::plugin`].

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use serde::Deserialize;
use serde_json::{Map, Value};

use crate::plugin::egress::{
    DEFAULT_MAX_RESPONSE_BYTES, MAX_RESPONSE_BYTES, Origin, Policy as EgressPolicy, tls_trusting,
};
use crate::plugin::signature::PublicKey;
use crate::secret::SecretHash;
use crate::token::jwk::ClientKeys;
use crate::token::kek::Kek;

mod read;

/// The audience of Tessera's own admin API: tokens for it, issued by this
/// Tessera, open the admin endpoints.
pub const ADMIN_AUDIENCE: &str = "urn:tessera:admin";

/// The admin scope `GET /admin/plugins` needs.
pub const SCOPE_PLUGINS_READ: &str = "tessera:plugins:read";
/// The admin scope `POST /admin/reload` needs.
pub const SCOPE_RELOAD: &str = "tessera:reload";
/// The admin scope `GET /admin/traces` needs.
pub const SCOPE_TRACES_READ: &str = "tessera:traces:read";

/// The scopes of the admin API, each with what it opens. An `[[apis]]` entry
/// for [`ADMIN_AUDIENCE`] declares the ones its grants may give.
pub const ADMIN_SCOPES: &[(&str, &str)] = &[
    (SCOPE_PLUGINS_READ, "GET /admin/plugins"),
    (SCOPE_RELOAD, "POST /admin/reload"),
    (SCOPE_TRACES_READ, "GET /admin/traces"),
];

/// Largest serialized size of one metadata table, in bytes.
pub const MAX_METADATA_BYTES: usize = 16 * 1024;

/// Largest `[[clients]] jwks_file` read.
pub const MAX_JWKS_FILE_BYTES: u64 = 64 * 1024;
/// Deepest nesting allowed inside a metadata value.
pub const MAX_METADATA_DEPTH: usize = 8;
/// Largest `memory_mb` a plugin may ask for.
pub const MAX_PLUGIN_MEMORY_MB: u32 = 256;
/// Largest `warm_instances` a plugin may ask for.
pub const MAX_WARM_INSTANCES: u32 = 16;
/// Largest `timeout_ms` a plugin may ask for.
pub const MAX_PLUGIN_TIMEOUT_MS: u64 = 10_000;

/// The signing algorithm of access and ID tokens.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Deserialize, Default)]
pub enum Algorithm {
    /// ECDSA with P-256 and SHA-256 (the default).
    #[default]
    ES256,
    /// RSASSA-PKCS1-v1_5 with SHA-256, 2048-bit keys.
    RS256,
    /// Ed25519.
    EdDSA,
}

impl Algorithm {
    /// Every algorithm, in a fixed order.
    pub const ALL: [Algorithm; 3] = [Algorithm::ES256, Algorithm::RS256, Algorithm::EdDSA];

    /// The JOSE `alg` name.
    pub fn as_str(self) -> &'static str {
        match self {
            Algorithm::ES256 => "ES256",
            Algorithm::RS256 => "RS256",
            Algorithm::EdDSA => "EdDSA",
        }
    }

    /// Parses a JOSE `alg` name.
    pub fn from_name(name: &str) -> Option<Self> {
        match name {
            "ES256" => Some(Algorithm::ES256),
            "RS256" => Some(Algorithm::RS256),
            "EdDSA" => Some(Algorithm::EdDSA),
            _ => None,
        }
    }
}

/// Who may get user-flow tokens for an API.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum UserAccess {
    /// Any application with a valid user sign-in.
    AllowAll,
    /// Only applications with a `subject = "user"` grant for the API (the default).
    #[default]
    RequireClientGrant,
    /// No user-flow tokens for this API.
    DenyAll,
}

/// Who may get client-credentials tokens for an API.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum ClientAccess {
    /// Only clients with a `subject = "client"` grant for the API (the default).
    #[default]
    RequireClientGrant,
    /// No client-credentials tokens for this API.
    DenyAll,
}

/// The kind of application a client is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum AppType {
    /// Browser single-page application (public).
    Spa,
    /// Server-side web application (confidential).
    RegularWeb,
    /// Mobile or desktop application (public).
    Native,
    /// Machine-to-machine client (confidential).
    Machine,
}

impl AppType {
    /// Whether the client can keep a secret (RFC 6749 §2.1).
    pub fn is_confidential(self) -> bool {
        matches!(self, AppType::RegularWeb | AppType::Machine)
    }

    /// The name used in configuration.
    pub fn as_str(self) -> &'static str {
        match self {
            AppType::Spa => "spa",
            AppType::RegularWeb => "regular_web",
            AppType::Native => "native",
            AppType::Machine => "machine",
        }
    }
}

/// How a client authenticates (`token_endpoint_auth_method`, OpenID Connect
/// Dynamic Client Registration §2), at every endpoint that asks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AuthMethod {
    /// HTTP Basic with the secret.
    ClientSecretBasic,
    /// `client_id` and `client_secret` in the form.
    ClientSecretPost,
    /// A JWT signed with one of the client's keys (RFC 7523).
    PrivateKeyJwt,
    /// `client_id` alone: a public client.
    None,
}

impl AuthMethod {
    /// The name used in configuration and discovery.
    pub fn as_str(self) -> &'static str {
        match self {
            AuthMethod::ClientSecretBasic => "client_secret_basic",
            AuthMethod::ClientSecretPost => "client_secret_post",
            AuthMethod::PrivateKeyJwt => "private_key_jwt",
            AuthMethod::None => "none",
        }
    }
}

/// Whose token a grant is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum Subject {
    /// The client itself (client credentials).
    #[default]
    Client,
    /// A user signed in to the client (user flows).
    User,
}

/// A pipeline stage a plugin can run at.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Deserialize)]
pub enum Stage {
    /// User flows, after sign-in.
    #[serde(rename = "authorize")]
    Authorize,
    /// Client credentials.
    #[serde(rename = "credentials-exchange")]
    CredentialsExchange,
}

impl Stage {
    /// The stage's name in configuration and WIT.
    pub fn as_str(self) -> &'static str {
        match self {
            Stage::Authorize => "authorize",
            Stage::CredentialsExchange => "credentials-exchange",
        }
    }

    /// Every stage.
    pub const ALL: [Stage; 2] = [Stage::CredentialsExchange, Stage::Authorize];

    /// The function a component exports for the stage (every WIT version).
    pub fn export_name(self) -> &'static str {
        match self {
            Stage::Authorize => "on-authorize",
            Stage::CredentialsExchange => "on-credentials-exchange",
        }
    }
}

/// What a plugin failure does to the request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum OnError {
    /// Fail the request with `server_error` (fail closed; the default).
    #[default]
    Fail,
    /// Ignore this plugin's output and go on.
    Skip,
}

// ---------------------------------------------------------------------------
// The file as written.

/// The file as read: each section and each array entry read on its own (see
/// [`read`]), so an entry that failed to read is missing here and its problem
/// is already reported.
#[derive(Default)]
struct RawConfig {
    server: Option<RawServer>,
    signing: RawSigning,
    store: RawStore,
    claims: RawClaims,
    runtime: RawRuntime,
    log: RawLog,
    metrics: RawMetrics,
    trace: RawTrace,
    /// Entries with their position in the file (`apis[0]` is the first).
    apis: Vec<(usize, RawApi)>,
    clients: Vec<(usize, RawClient)>,
    grants: Vec<(usize, RawGrant)>,
    plugins: Vec<(usize, RawPlugin)>,
    /// Every API identifier the file names, including those of entries that
    /// failed to read or validate: a reference to one of them is not a
    /// second problem.
    named_apis: HashSet<String>,
    /// Every client id the file names, likewise.
    named_clients: HashSet<String>,
}

impl RawConfig {
    /// Reads every section and entry of the file it can, reporting the rest.
    fn read(text: &str) -> Result<(RawConfig, Vec<String>), Vec<String>> {
        let entries = read::parse(text)?;
        let mut reader = read::Reader::new(text);
        let mut raw = RawConfig::default();
        for (key, value) in entries {
            match key.as_str() {
                "server" => raw.server = reader.read("server", value),
                "signing" => raw.signing = reader.read("signing", value).unwrap_or_default(),
                "store" => raw.store = reader.read("store", value).unwrap_or_default(),
                "claims" => raw.claims = reader.read("claims", value).unwrap_or_default(),
                "runtime" => raw.runtime = reader.read("runtime", value).unwrap_or_default(),
                "log" => raw.log = reader.read("log", value).unwrap_or_default(),
                "metrics" => raw.metrics = reader.read("metrics", value).unwrap_or_default(),
                "trace" => raw.trace = reader.read("trace", value).unwrap_or_default(),
                "apis" => {
                    for (i, v) in entries_of(&mut reader, "apis", value) {
                        let id = read::string_field(v.get_ref(), "identifier").map(str::to_owned);
                        let key = entry_key("apis", i, id.as_deref());
                        raw.named_apis.extend(id);
                        raw.apis.extend(reader.read(&key, v).map(|a| (i, a)));
                    }
                }
                "clients" => {
                    for (i, v) in entries_of(&mut reader, "clients", value) {
                        let id = read::string_field(v.get_ref(), "id").map(str::to_owned);
                        let key = entry_key("clients", i, id.as_deref());
                        raw.named_clients.extend(id);
                        raw.clients.extend(reader.read(&key, v).map(|c| (i, c)));
                    }
                }
                "grants" => {
                    for (i, v) in entries_of(&mut reader, "grants", value) {
                        let key = entry_key("grants", i, None);
                        raw.grants.extend(reader.read(&key, v).map(|g| (i, g)));
                    }
                }
                "plugins" => {
                    for (i, v) in entries_of(&mut reader, "plugins", value) {
                        let name = read::string_field(v.get_ref(), "name");
                        let key = entry_key("plugins", i, name);
                        raw.plugins.extend(reader.read(&key, v).map(|p| (i, p)));
                    }
                }
                other => {
                    let line = reader.line(&value.span());
                    reader.problems.push(format!(
                        "{other} ({line}): unknown section; the sections are [server], [signing], \
                         [store], [claims], [runtime], [log], [metrics], [trace], [[apis]], [[clients]], [[grants]] and [[plugins]]"
                    ));
                }
            }
        }
        if raw.server.is_none() && !reader.problems.iter().any(|p| p.starts_with("server")) {
            reader.problems.push(
                "server: missing; add a [server] section with issuer = \"https://…\"".to_owned(),
            );
        }
        Ok((raw, reader.problems))
    }
}

/// How an entry is named in messages: by its id when it has a usable one
/// (`clients[acme-sync]`), else by its position (`clients[2]`).
fn entry_key(section: &str, i: usize, id: Option<&str>) -> String {
    match id {
        Some(id) if !id.is_empty() && id.len() <= 256 && !id.contains(['[', ']', '\n']) => {
            format!("{section}[{id}]")
        }
        _ => format!("{section}[{i}]"),
    }
}

/// The entries of an array of tables, with their positions; anything else at
/// that key is reported.
fn entries_of<'t>(
    reader: &mut read::Reader<'_>,
    section: &str,
    value: toml::Spanned<toml::de::DeValue<'t>>,
) -> Vec<(usize, toml::Spanned<toml::de::DeValue<'t>>)> {
    let span = value.span();
    match value.into_inner() {
        toml::de::DeValue::Array(items) => items.iter().cloned().enumerate().collect(),
        _ => {
            let line = reader.line(&span);
            reader.problems.push(format!(
                "{section} ({line}): must be an array of tables: write each entry as [[{section}]]"
            ));
            Vec::new()
        }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawServer {
    issuer: String,
    #[serde(default = "default_listen")]
    listen: String,
    #[serde(default)]
    limits: RawLimits,
    #[serde(default)]
    trusted_proxies: Vec<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, default)]
struct RawLimits {
    header_read_timeout_ms: u64,
    request_timeout_ms: u64,
    max_connections: u32,
    max_headers: u32,
    max_header_bytes: u32,
}

impl Default for RawLimits {
    fn default() -> RawLimits {
        let d = HttpLimits::default();
        RawLimits {
            header_read_timeout_ms: d.header_read_timeout.as_millis() as u64,
            request_timeout_ms: d.request_timeout.as_millis() as u64,
            max_connections: d.max_connections as u32,
            max_headers: d.max_headers as u32,
            max_header_bytes: d.max_header_bytes as u32,
        }
    }
}

impl Default for RawRuntime {
    fn default() -> RawRuntime {
        RawRuntime {
            cache_dir: None,
            compile_timeout_ms: default_compile_timeout_ms(),
            fuel: false,
        }
    }
}

fn default_listen() -> String {
    "127.0.0.1:8080".to_owned()
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSigning {
    #[serde(default)]
    algorithm: Algorithm,
    #[serde(default = "default_id_token_algorithm")]
    id_token_algorithm: Algorithm,
    #[serde(default)]
    key_dir: Option<PathBuf>,
    #[serde(default)]
    kek_env: Option<String>,
    #[serde(default)]
    kek_file: Option<PathBuf>,
    #[serde(default = "default_pre_publication_delay_secs")]
    pre_publication_delay_secs: u64,
}

/// OpenID Connect Discovery §3 makes RS256 the algorithm every relying party
/// can verify, and the one libraries expect when a client registered none.
fn default_id_token_algorithm() -> Algorithm {
    Algorithm::RS256
}

fn default_pre_publication_delay_secs() -> u64 {
    DEFAULT_PRE_PUBLICATION_DELAY_SECS
}

impl Default for RawSigning {
    fn default() -> Self {
        RawSigning {
            algorithm: Algorithm::default(),
            id_token_algorithm: default_id_token_algorithm(),
            key_dir: None,
            kek_env: None,
            kek_file: None,
            pre_publication_delay_secs: DEFAULT_PRE_PUBLICATION_DELAY_SECS,
        }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawStore {
    #[serde(default)]
    url: Option<String>,
    #[serde(default)]
    max_connections: Option<u64>,
    #[serde(default = "default_connect_timeout_secs")]
    connect_timeout_secs: u64,
    #[serde(default = "default_statement_timeout_secs")]
    statement_timeout_secs: u64,
}

impl Default for RawStore {
    fn default() -> Self {
        RawStore {
            url: None,
            max_connections: None,
            connect_timeout_secs: default_connect_timeout_secs(),
            statement_timeout_secs: default_statement_timeout_secs(),
        }
    }
}

fn default_connect_timeout_secs() -> u64 {
    5
}

fn default_statement_timeout_secs() -> u64 {
    5
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawLog {
    #[serde(default)]
    format: LogFormat,
    #[serde(default)]
    audit: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTrace {
    #[serde(default = "default_trace_keep")]
    keep: usize,
    #[serde(default)]
    redact: Option<Vec<String>>,
}

impl Default for RawTrace {
    fn default() -> RawTrace {
        RawTrace {
            keep: default_trace_keep(),
            redact: None,
        }
    }
}

/// The fields of a trace's recorded event that `[trace] redact` hides by
/// default: who the user is and where the request came from.
pub const DEFAULT_TRACE_REDACT: [&str; 4] = [
    "user.email",
    "user.name",
    "request.ip",
    "request.user_agent",
];

/// The text fields `[trace] redact` may name; `…metadata.KEY` and
/// `request.params.KEY` may name any key too.
pub const TRACE_REDACT_FIELDS: [&str; 7] = [
    "client.name",
    "user.id",
    "user.email",
    "user.name",
    "request.ip",
    "request.user_agent",
    "request.hostname",
];

/// The maps whose keys `[trace] redact` may name (`client.metadata.tier`).
pub const TRACE_REDACT_MAPS: [&str; 5] = [
    "client.metadata.",
    "api.metadata.",
    "user.app_metadata.",
    "user.user_metadata.",
    "request.params.",
];

fn default_trace_keep() -> usize {
    1000
}

/// The most decision traces `[trace] keep` may hold in memory.
pub const MAX_TRACES: usize = 100_000;

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawMetrics {
    #[serde(default)]
    listen: String,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawClaims {
    #[serde(default)]
    require_namespace: bool,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRuntime {
    #[serde(default)]
    cache_dir: Option<PathBuf>,
    #[serde(default = "default_compile_timeout_ms")]
    compile_timeout_ms: u64,
    #[serde(default)]
    fuel: bool,
}

fn default_compile_timeout_ms() -> u64 {
    60_000
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawApi {
    identifier: String,
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    scopes: Vec<String>,
    #[serde(default = "default_token_lifetime")]
    token_lifetime_secs: u64,
    #[serde(default)]
    user_access: UserAccess,
    #[serde(default)]
    client_access: ClientAccess,
    #[serde(default)]
    resource_servers: Vec<String>,
    #[serde(default)]
    scope_descriptions: BTreeMap<String, String>,
    #[serde(default)]
    metadata: toml::Table,
}

fn default_token_lifetime() -> u64 {
    3600
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawClient {
    id: String,
    #[serde(default)]
    name: Option<String>,
    app_type: AppType,
    #[serde(default)]
    secret_hash: Option<String>,
    #[serde(default)]
    secret_env: Option<String>,
    #[serde(default)]
    jwks: Option<toml::Table>,
    #[serde(default)]
    jwks_file: Option<PathBuf>,
    #[serde(default)]
    redirect_uris: Vec<String>,
    #[serde(default)]
    post_logout_redirect_uris: Vec<String>,
    #[serde(default)]
    refresh_reuse_leeway_secs: u64,
    #[serde(default)]
    id_token_signed_response_alg: Option<Algorithm>,
    #[serde(default)]
    token_endpoint_auth_method: Option<AuthMethod>,
    #[serde(default = "yes")]
    first_party: bool,
    #[serde(default)]
    allowed_origins: Vec<String>,
    #[serde(default)]
    trace: bool,
    #[serde(default)]
    metadata: toml::Table,
}

fn yes() -> bool {
    true
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawGrant {
    client: String,
    api: String,
    #[serde(default)]
    scopes: Vec<String>,
    #[serde(default)]
    subject: Subject,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPlugin {
    name: String,
    path: PathBuf,
    #[serde(default)]
    stages: Option<Vec<Stage>>,
    #[serde(default)]
    apis: Vec<String>,
    #[serde(default)]
    on_error: OnError,
    #[serde(default = "default_timeout_ms")]
    timeout_ms: u64,
    #[serde(default = "default_memory_mb")]
    memory_mb: u32,
    #[serde(default)]
    warm_instances: Option<u32>,
    #[serde(default = "default_warm_max_calls")]
    warm_max_calls: u32,
    #[serde(default)]
    fuel: Option<u64>,
    #[serde(default)]
    config: toml::Table,
    #[serde(default)]
    secrets: BTreeMap<String, RawSecretSource>,
    #[serde(default)]
    signers: Vec<String>,
    #[serde(default)]
    shadow_path: Option<PathBuf>,
    #[serde(default)]
    shadow_sample: Option<f64>,
    #[serde(default)]
    egress: Vec<String>,
    #[serde(default)]
    egress_max_bytes: Option<u64>,
    #[serde(default)]
    egress_ca_file: Option<PathBuf>,
}

/// The share of calls a shadow runs beside by default (`shadow_sample`).
pub const DEFAULT_SHADOW_SAMPLE: f64 = 0.1;

fn default_timeout_ms() -> u64 {
    50
}

fn default_memory_mb() -> u32 {
    32
}

fn default_warm_max_calls() -> u32 {
    1000
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSecretSource {
    #[serde(default)]
    env: Option<String>,
    #[serde(default)]
    file: Option<PathBuf>,
}

// ---------------------------------------------------------------------------
// The validated configuration.

/// A validated configuration: every cross-reference resolved, every secret read.
#[derive(Debug)]
pub struct Config {
    /// The file this was read from.
    pub path: PathBuf,
    /// `[server]`.
    pub server: ServerConfig,
    /// `[signing]`.
    pub signing: SigningConfig,
    /// `[store]`.
    pub store: StoreConfig,
    /// `[claims]`.
    pub claims: ClaimsConfig,
    /// `[log]`.
    pub log: LogConfig,
    /// `[metrics]`.
    pub metrics: MetricsConfig,
    /// `[trace] keep`: how many decision traces the issuer keeps in memory
    /// for `GET /admin/traces` (0: none are kept).
    pub trace_keep: usize,
    /// `[trace] redact`: the fields of a trace's recorded event that its
    /// readers see as `<redacted>`.
    pub trace_redact: Vec<String>,
    /// `[runtime]`: where compiled plugins are cached.
    pub runtime: RuntimeConfig,
    /// `[[apis]]`, in file order.
    pub apis: Vec<Arc<Api>>,
    api_index: HashMap<String, usize>,
    /// `[[clients]]` by id.
    pub clients: HashMap<String, Arc<Client>>,
    /// Every client's `allowed_origins`: the origins a CORS preflight is
    /// answered for.
    web_origins: HashSet<String>,
    grants: HashMap<(String, String, Subject), Grant>,
    /// `[[plugins]]`, in the order they run.
    pub plugins: Vec<PluginConfig>,
    /// Things that load but look wrong (a secret in metadata), by key.
    pub warnings: Vec<String>,
}

/// `[server]`.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    /// The exact `iss` of every token.
    pub issuer: String,
    /// The address to listen on.
    pub listen: SocketAddr,
    /// Limits of the HTTP edge (read at start; a reload does not change them).
    pub limits: HttpLimits,
    /// Peers whose `X-Forwarded-For` is believed: the load balancers in
    /// front of the issuer. Empty: the peer is the client.
    pub trusted_proxies: Vec<ipnet::IpNet>,
}

/// `[server.limits]`: what one client can hold of the HTTP edge.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HttpLimits {
    /// A client has this long to send its request headers (slowloris).
    pub header_read_timeout: Duration,
    /// A request, body included, must be read and answered within this.
    pub request_timeout: Duration,
    /// Open connections beyond this wait in the accept queue.
    pub max_connections: usize,
    /// More request headers than this get 431.
    pub max_headers: usize,
    /// Request headers larger than this in all (names and values) get 431.
    pub max_header_bytes: usize,
}

impl Default for HttpLimits {
    fn default() -> HttpLimits {
        HttpLimits {
            header_read_timeout: Duration::from_secs(10),
            request_timeout: Duration::from_secs(30),
            max_connections: 4096,
            max_headers: 100,
            max_header_bytes: 32 * 1024,
        }
    }
}

impl ServerConfig {
    /// An absolute URL for a path on this issuer (`/oauth/token`).
    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.issuer.trim_end_matches('/'), path)
    }

    /// Whether the issuer is reached over TLS: its cookies are `Secure` and
    /// `__Host-`, and its answers carry `Strict-Transport-Security`.
    pub fn is_https(&self) -> bool {
        self.issuer.starts_with("https://")
    }
}

/// `[signing]`.
#[derive(Debug, Clone)]
pub struct SigningConfig {
    /// The algorithm of access tokens: the key that signs them is the
    /// primary key, the one `tessera keys` speaks of first.
    pub algorithm: Algorithm,
    /// The algorithm of ID tokens for clients that name none
    /// (`id_token_signed_response_alg`).
    pub id_token_algorithm: Algorithm,
    /// Every algorithm a signing key is kept for, `algorithm` first: RS256
    /// (which OpenID Connect Discovery requires), `id_token_algorithm` and
    /// each client's `id_token_signed_response_alg`.
    pub algorithms: Vec<Algorithm>,
    /// Where private keys live (absolute) when there is no KEK.
    pub key_dir: PathBuf,
    /// The key-encryption key (`kek_env` or `kek_file`): when set, the keys
    /// live in the store, sealed with it.
    pub kek: Option<Arc<Kek>>,
    /// How long a new key is published before it signs.
    pub pre_publication_delay: Duration,
}

impl SigningConfig {
    /// Every algorithm a key is kept for, the access tokens' first (also
    /// for a configuration built by hand with `algorithms` left empty).
    pub fn key_algorithms(&self) -> Vec<Algorithm> {
        let mut out = vec![self.algorithm];
        for &alg in &self.algorithms {
            if !out.contains(&alg) {
                out.push(alg);
            }
        }
        out
    }

    /// Whether `other` keeps its keys in the same place (what a reload
    /// cannot change).
    pub fn same_place(&self, other: &SigningConfig) -> bool {
        match (&self.kek, &other.kek) {
            (Some(a), Some(b)) => a.id() == b.id(),
            (None, None) => self.key_dir == other.key_dir,
            _ => false,
        }
    }
}

/// Every algorithm a key is kept for, the access tokens' first, in an order
/// that depends only on the configuration (replicas starting together on an
/// empty store make the same keys in the same order).
fn signing_algorithms<'a>(
    signing: &SigningConfig,
    clients: impl Iterator<Item = &'a Client>,
) -> Vec<Algorithm> {
    // A machine client gets no ID tokens: its choice needs no key.
    let chosen: Vec<Algorithm> = clients
        .filter(|c| c.app_type != AppType::Machine)
        .map(|c| c.id_token_algorithm)
        .collect();
    let mut out = vec![signing.algorithm];
    let wanted = [Algorithm::RS256, signing.id_token_algorithm]
        .into_iter()
        .chain(Algorithm::ALL.into_iter().filter(|a| chosen.contains(a)));
    for alg in wanted {
        if !out.contains(&alg) {
            out.push(alg);
        }
    }
    out
}

/// The default `[signing] pre_publication_delay_secs`: longer than the
/// `max-age` Tessera sends with the JWKS (300 s) and the 10 minutes that
/// common JWKS caches (jose, JwksRsa) keep a key set.
pub const DEFAULT_PRE_PUBLICATION_DELAY_SECS: u64 = 600;

/// The longest `[signing] pre_publication_delay_secs` (a week).
pub const MAX_PRE_PUBLICATION_DELAY_SECS: u64 = 7 * 86_400;

/// The environment variable that, when set, replaces `[store] url`, so a
/// PostgreSQL URL with its password need not be written in the file.
pub const STORE_URL_ENV: &str = "TESSERA_STORE_URL";

/// The longest `[[clients]] refresh_reuse_leeway_secs`.
pub const MAX_REFRESH_REUSE_LEEWAY_SECS: u64 = 60;

/// `[store]`.
#[derive(Clone)]
pub struct StoreConfig {
    /// `sqlite://…` (absolute) or `postgres://…`; from `TESSERA_STORE_URL`
    /// when that is set. May hold a password: print
    /// [`crate::store::redacted_url`] of it, never the URL itself.
    pub url: String,
    /// Pool size and timeouts.
    pub pool: crate::store::PoolSettings,
}

impl StoreConfig {
    /// Whether the store is PostgreSQL.
    pub fn is_postgres(&self) -> bool {
        self.url.starts_with("postgres://") || self.url.starts_with("postgresql://")
    }
}

impl fmt::Debug for StoreConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StoreConfig")
            .field("url", &crate::store::redacted_url(&self.url))
            .field("pool", &self.pool)
            .finish()
    }
}

/// `[log]` (read at start; a reload does not change it).
#[derive(Debug, Clone)]
pub struct LogConfig {
    /// How log lines are written.
    pub format: LogFormat,
    /// Where audit events go.
    pub audit: AuditSink,
}

/// Where audit events go (`[log] audit`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum AuditSink {
    /// `"stderr"` (the default): with the rest of the log, in its format.
    #[default]
    Stderr,
    /// `"off"`: nowhere.
    Off,
    /// A file path: appended to, one JSON object per line, whatever
    /// `TESSERA_LOG` says.
    File(PathBuf),
}

/// How log lines are written (`[log] format`, `TESSERA_LOG_FORMAT`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// For people: one line per event, the request's fields in front.
    #[default]
    Text,
    /// For log pipelines: one JSON object per line.
    Json,
}

impl LogFormat {
    /// `text` or `json`.
    pub fn parse(name: &str) -> Option<LogFormat> {
        match name {
            "text" => Some(LogFormat::Text),
            "json" => Some(LogFormat::Json),
            _ => None,
        }
    }
}

/// `[metrics]` (read at start; a reload does not change it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MetricsConfig {
    /// Where `/metrics` is served on a listener of its own; `None`: on the
    /// main listener, beside the other endpoints.
    pub listen: Option<SocketAddr>,
}

/// `[claims]`.
#[derive(Debug, Clone, Copy)]
pub struct ClaimsConfig {
    /// Custom claim names must be URLs or URNs.
    pub require_namespace: bool,
}

/// `[runtime]`.
#[derive(Debug, Clone)]
pub struct RuntimeConfig {
    /// Compiled plugin artifacts, keyed by content hash and engine settings.
    pub cache_dir: PathBuf,
    /// A plugin whose compilation takes longer fails to load.
    pub compile_timeout: Duration,
    /// Whether the engine counts fuel, so plugins can have a `fuel` budget
    /// (read at start; a reload cannot change it).
    pub fuel: bool,
}

/// An API (resource server): the audience of access tokens.
#[derive(Debug)]
pub struct Api {
    /// The audience.
    pub identifier: String,
    /// Display name.
    pub name: String,
    /// The scopes it defines, in file order.
    pub scopes: Vec<String>,
    /// Access token lifetime.
    pub token_lifetime: Duration,
    /// User-flow policy.
    pub user_access: UserAccess,
    /// Client-credentials policy.
    pub client_access: ClientAccess,
    /// The confidential clients that act as this API's resource servers:
    /// each may introspect any token whose audience is this API.
    pub resource_servers: Vec<String>,
    /// What each scope lets an application do, in plain words for the
    /// consent page; a scope without one is shown by its name.
    pub scope_descriptions: BTreeMap<String, String>,
    /// Metadata passed to plugins.
    pub metadata: Map<String, Value>,
}

/// An application.
pub struct Client {
    /// `client_id`.
    pub id: String,
    /// Display name.
    pub name: String,
    /// Kind of application.
    pub app_type: AppType,
    /// Hash of the client secret (confidential clients that authenticate
    /// with a secret).
    pub secret: Option<SecretHash>,
    /// The public keys of a confidential client that authenticates with
    /// signed assertions (`private_key_jwt`, RFC 7523) instead of a secret.
    pub keys: Option<Arc<ClientKeys>>,
    /// Registered redirect URIs (exact match).
    pub redirect_uris: Vec<String>,
    /// Where `/oidc/logout` may send the browser afterwards (exact match,
    /// OpenID Connect RP-Initiated Logout 1.0 §3).
    pub post_logout_redirect_uris: Vec<String>,
    /// Metadata passed to plugins. Never secrets.
    pub metadata: Map<String, Value>,
    /// APIs this client has a `subject = "client"` grant for, in file order.
    pub client_grant_apis: Vec<String>,
    /// How long after a refresh token's first use it may be used again
    /// without counting as reuse (0: never).
    pub refresh_reuse_leeway: Duration,
    /// The algorithm of its ID tokens (`id_token_signed_response_alg`, else
    /// `[signing] id_token_algorithm`).
    pub id_token_algorithm: Algorithm,
    /// The one method it may authenticate with, when configured
    /// (`token_endpoint_auth_method`); else any its credentials allow.
    pub auth_method: Option<AuthMethod>,
    /// Whether the application is the issuer owner's own (`first_party`,
    /// the default): its users are not asked for consent. A third-party
    /// application's are, once per scope set.
    pub first_party: bool,
    /// The web origins (`https://app.example.com`) whose pages may call the
    /// token endpoint and `/userinfo` for this client from a browser (CORS).
    pub allowed_origins: Vec<String>,
    /// Whether its token responses carry a `Tessera-Trace` header with the
    /// id of their decision trace (`trace`; for development).
    pub trace: bool,
}

impl fmt::Debug for Client {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Client")
            .field("id", &self.id)
            .field("name", &self.name)
            .field("app_type", &self.app_type)
            .field("has_secret", &self.secret.is_some())
            .field("keys", &self.keys)
            .finish_non_exhaustive()
    }
}

/// The ceiling of what a client may get for an API.
#[derive(Debug, Clone)]
pub struct Grant {
    /// Scopes the client may get (a subset of the API's).
    pub scopes: Vec<String>,
}

/// A plugin as configured (the component itself is loaded by [`crate::plugin`]).
#[derive(Debug, Clone)]
pub struct PluginConfig {
    /// Unique name.
    pub name: String,
    /// The `.wasm` component (absolute).
    pub path: PathBuf,
    /// Where this plugin is in its configuration file, for messages:
    /// `plugins[partner-claims]`; empty for a plugin loaded on its own (the
    /// `tessera plugin` commands).
    pub key: String,
    /// `path` as the configuration file wrote it.
    pub written_path: PathBuf,
    /// Stages to run at; `None` means every stage the component exports.
    pub stages: Option<Vec<Stage>>,
    /// Only for these audiences; empty means every API.
    pub apis: Vec<String>,
    /// What a failure does.
    pub on_error: OnError,
    /// Wall-clock budget per call.
    pub timeout: Duration,
    /// Linear memory cap per call.
    pub memory_bytes: usize,
    /// How many idle instances to keep for reuse; `None` lets the loader
    /// choose by the component's language (see [`crate::plugin::Warm`]).
    pub warm_instances: Option<u32>,
    /// Calls one reused instance serves before it is replaced.
    pub warm_max_calls: u32,
    /// Fuel (roughly, wasm instructions) per call; needs `[runtime] fuel`.
    pub fuel: Option<u64>,
    /// Values for the `config` host import (non-strings as JSON text).
    pub config: Arc<HashMap<String, String>>,
    /// Values for the `secret` host import.
    pub secrets: Arc<HashMap<String, PluginSecret>>,
    /// Publishers whose signature the file needs (`FILE.wasm.sig`); empty
    /// means the file loads unsigned.
    pub signers: Vec<PublicKey>,
    /// A candidate build run beside this one on a share of its calls.
    pub shadow: Option<ShadowConfig>,
    /// The origins it may send HTTP requests to, and how much it may read
    /// back (`egress`, `egress_max_bytes`).
    pub egress: Arc<EgressPolicy>,
}

/// `shadow_path` and `shadow_sample` of a `[[plugins]]` entry.
#[derive(Debug, Clone, PartialEq)]
pub struct ShadowConfig {
    /// The candidate component (absolute).
    pub path: PathBuf,
    /// `shadow_path` as the configuration file wrote it.
    pub written_path: PathBuf,
    /// The share of the plugin's calls the candidate also runs for, in
    /// (0, 1].
    pub sample: f64,
}

impl PluginConfig {
    /// A plugin run outside a configuration file (`tessera plugin test` and
    /// `inspect`): every stage it exports, `on_error = "fail"`, the default
    /// deadline and memory cap, a fresh instance per call, no config or
    /// secrets.
    pub fn standalone(name: String, path: PathBuf) -> PluginConfig {
        PluginConfig {
            name,
            key: String::new(),
            written_path: path.clone(),
            path,
            stages: None,
            apis: Vec::new(),
            on_error: OnError::Fail,
            timeout: Duration::from_millis(default_timeout_ms()),
            memory_bytes: (default_memory_mb() as usize) << 20,
            warm_instances: Some(0),
            warm_max_calls: 1,
            fuel: None,
            config: Arc::default(),
            secrets: Arc::default(),
            signers: Vec::new(),
            shadow: None,
            egress: Arc::default(),
        }
    }
}

/// A plugin secret. Its `Debug` never shows the value.
#[derive(Clone)]
pub struct PluginSecret(String);

impl PluginSecret {
    /// Wraps a value read from somewhere other than the configuration (the
    /// event file of `tessera plugin test`).
    pub fn new(value: String) -> PluginSecret {
        PluginSecret(value)
    }

    /// The secret's value, to hand to the plugin.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for PluginSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("PluginSecret(<redacted>)")
    }
}

impl Config {
    /// The `[[plugins]]` entry named `name`; `Err` names the file and the
    /// entries it has.
    pub fn plugin(&self, name: &str) -> Result<&PluginConfig, String> {
        self.plugins.iter().find(|p| p.name == name).ok_or_else(|| {
            let names: Vec<&str> = self.plugins.iter().map(|p| p.name.as_str()).collect();
            format!(
                "{}: no [[plugins]] entry is named {name:?} (its plugins: {})",
                self.path.display(),
                if names.is_empty() {
                    "none".to_owned()
                } else {
                    names.join(", ")
                }
            )
        })
    }

    /// Reads and validates a configuration file. Relative paths in it are
    /// relative to the file's folder.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|e| ConfigError {
            file: path.to_owned(),
            problems: vec![format!("cannot read the file: {e}")],
        })?;
        Config::parse(path, &text, &|name| std::env::var(name).ok())
    }

    /// Validates configuration text. `env` looks up environment variables, so
    /// tests need not touch the process environment.
    pub fn parse(
        path: &Path,
        text: &str,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Config, ConfigError> {
        let (raw, problems) = RawConfig::read(text).map_err(|problems| ConfigError {
            file: path.to_owned(),
            problems,
        })?;
        let base = path
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .map(Path::to_path_buf)
            .unwrap_or_else(|| PathBuf::from("."));
        let base = std::path::absolute(&base).unwrap_or(base);
        let mut v = Validator {
            base,
            env,
            problems,
            warnings: Vec::new(),
        };
        match v.config(path, raw) {
            Some(config) if v.problems.is_empty() => Ok(config),
            _ => Err(ConfigError {
                file: path.to_owned(),
                problems: v.problems,
            }),
        }
    }

    /// Whether some client lists `origin` in its `allowed_origins`.
    pub fn is_web_origin(&self, origin: &str) -> bool {
        self.web_origins.contains(origin)
    }

    /// Looks up an API by identifier.
    pub fn api(&self, identifier: &str) -> Option<&Arc<Api>> {
        self.api_index.get(identifier).map(|&i| &self.apis[i])
    }

    /// The grant of `client` for `api` and `subject`, if any.
    pub fn grant(&self, client: &str, api: &str, subject: Subject) -> Option<&Grant> {
        self.grants
            .get(&(client.to_owned(), api.to_owned(), subject))
    }
}

/// Everything wrong with a configuration file.
#[derive(Debug, Clone)]
pub struct ConfigError {
    /// The file.
    pub file: PathBuf,
    /// One line per problem, each naming the key.
    pub problems: Vec<String>,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let n = self.problems.len();
        write!(
            f,
            "{}: {} problem{}",
            self.file.display(),
            n,
            if n == 1 { "" } else { "s" }
        )?;
        for p in &self.problems {
            write!(f, "\n  - {}", p.replace('\n', "\n    "))?;
        }
        Ok(())
    }
}

impl std::error::Error for ConfigError {}

struct Validator<'a> {
    base: PathBuf,
    env: &'a dyn Fn(&str) -> Option<String>,
    problems: Vec<String>,
    warnings: Vec<String>,
}

impl Validator<'_> {
    fn problem(&mut self, key: impl fmt::Display, message: impl fmt::Display) {
        self.problems.push(format!("{key}: {message}"));
    }

    fn resolve(&self, p: &Path) -> PathBuf {
        if p.is_absolute() {
            p.to_owned()
        } else {
            self.base.join(p)
        }
    }

    /// The validated configuration, or `None` when a piece of it could not
    /// even be read (its problem is already reported).
    fn config(&mut self, path: &Path, raw: RawConfig) -> Option<Config> {
        let server = raw.server.map(|s| self.server(s));
        let store = self.store(raw.store);
        let signing = self.signing(raw.signing, &store);
        let runtime = RuntimeConfig {
            cache_dir: self.resolve(
                raw.runtime
                    .cache_dir
                    .as_deref()
                    .unwrap_or(Path::new("data/cache")),
            ),
            compile_timeout: Duration::from_millis(raw.runtime.compile_timeout_ms),
            fuel: raw.runtime.fuel,
        };
        if raw.runtime.compile_timeout_ms == 0 {
            self.problem("runtime.compile_timeout_ms", "must be at least 1");
        }
        let metrics = MetricsConfig {
            listen: match raw.metrics.listen.trim() {
                "" => None,
                text => match text.parse::<SocketAddr>() {
                    Ok(a) => Some(a),
                    Err(_) => {
                        self.problem(
                            "metrics.listen",
                            format_args!(
                                "{text:?} is not an IP address and port; write e.g. \"127.0.0.1:9090\", or leave it empty to serve /metrics on server.listen"
                            ),
                        );
                        None
                    }
                },
            },
        };
        let audit = match raw.log.audit.as_deref().map(str::trim) {
            None | Some("stderr") => AuditSink::Stderr,
            Some("off") => AuditSink::Off,
            Some("") => {
                self.problem(
                    "log.audit",
                    "is empty; write \"stderr\", \"off\" or a file path",
                );
                AuditSink::Stderr
            }
            Some(path) => {
                let file = self.resolve(Path::new(path));
                match file.parent() {
                    Some(folder) if !folder.as_os_str().is_empty() && !folder.is_dir() => {
                        self.problem(
                            "log.audit",
                            format_args!(
                                "the folder of {} does not exist; create it, or write \"stderr\" or \"off\"",
                                file.display()
                            ),
                        );
                    }
                    _ => {}
                }
                AuditSink::File(file)
            }
        };
        if raw.trace.keep > MAX_TRACES {
            self.problem(
                "trace.keep",
                format_args!(
                    "{} is more than {MAX_TRACES}; each trace takes a few KiB of memory",
                    raw.trace.keep
                ),
            );
        }
        let trace_redact = match raw.trace.redact {
            None => DEFAULT_TRACE_REDACT.map(String::from).to_vec(),
            Some(list) => {
                for path in &list {
                    let known = TRACE_REDACT_FIELDS.contains(&path.as_str())
                        || TRACE_REDACT_MAPS
                            .iter()
                            .any(|m| path.strip_prefix(m).is_some_and(|key| !key.is_empty()));
                    if !known {
                        self.problem(
                            "trace.redact",
                            format_args!(
                                "{path:?} is not a field a trace records; name one of {} or a key under {}",
                                TRACE_REDACT_FIELDS.join(", "),
                                TRACE_REDACT_MAPS.map(|m| format!("{m}KEY")).join(", ")
                            ),
                        );
                    }
                }
                list
            }
        };
        if let (Some(server), Some(at)) = (&server, metrics.listen)
            && server.listen == at
            && at.port() != 0
        {
            self.problem(
                "metrics.listen",
                format_args!("{at} is server.listen too; give /metrics another port, or leave metrics.listen empty to serve it there"),
            );
        }

        let mut apis = Vec::new();
        let mut api_index = HashMap::new();
        for (i, raw_api) in raw.apis {
            let key = format!("apis[{i}]");
            if let Some(api) = self.api(&key, raw_api) {
                if api_index.contains_key(&api.identifier) {
                    self.problem(
                        format!("{key}.identifier"),
                        format_args!(
                            "{:?} is already used by another API; identifiers must be unique",
                            api.identifier
                        ),
                    );
                    continue;
                }
                api_index.insert(api.identifier.clone(), apis.len());
                apis.push(Arc::new(api));
            }
        }

        let mut signing = signing;
        let mut clients: HashMap<String, Client> = HashMap::new();
        for (i, raw_client) in raw.clients {
            let key = format!("clients[{i}]");
            if let Some(client) = self.client(&key, raw_client, signing.id_token_algorithm) {
                if clients.contains_key(&client.id) {
                    self.problem(
                        format!("{key}.id"),
                        format_args!(
                            "{:?} is already used by another client; ids must be unique",
                            client.id
                        ),
                    );
                    continue;
                }
                clients.insert(client.id.clone(), client);
            }
        }
        signing.algorithms = signing_algorithms(&signing, clients.values());

        for api in &apis {
            for id in &api.resource_servers {
                let key = format!("apis[{}].resource_servers", api.identifier);
                match clients.get(id) {
                    Some(c) if c.app_type.is_confidential() => {}
                    Some(c) => self.problem(
                        key,
                        format_args!(
                            "client {id:?} is a public {} application; a resource server must \
                             authenticate to introspect, so name a machine client",
                            c.app_type.as_str()
                        ),
                    ),
                    None if raw.named_clients.contains(id) => {}
                    None => self.problem(
                        key,
                        format_args!(
                            "no client has id {id:?}; add it under [[clients]] or fix the id"
                        ),
                    ),
                }
            }
        }

        let mut grants = HashMap::new();
        for (i, g) in raw.grants {
            let key = format!("grants[{i}]");
            let Some(client) = clients.get_mut(&g.client) else {
                if raw.named_clients.contains(&g.client) {
                    // The client is in the file but has problems of its own.
                    continue;
                }
                self.problem(
                    format!("{key}.client"),
                    format_args!(
                        "no client has id {:?}; add it under [[clients]] or fix the id",
                        g.client
                    ),
                );
                continue;
            };
            let Some(&api_i) = api_index.get(&g.api) else {
                if raw.named_apis.contains(&g.api) {
                    continue;
                }
                self.problem(
                    format!("{key}.api"),
                    format_args!(
                        "no API has identifier {:?}; add it under [[apis]] or fix the identifier",
                        g.api
                    ),
                );
                continue;
            };
            let api: &Api = &apis[api_i];
            if g.subject == Subject::Client && !client.app_type.is_confidential() {
                self.problem(
                    format!("{key}.subject"),
                    format_args!(
                        "client {:?} is a public {} application and cannot use client credentials; \
                         use subject = \"user\" or make it a machine client",
                        client.id,
                        client.app_type.as_str()
                    ),
                );
            }
            let mut scopes = Vec::new();
            for s in g.scopes {
                if !api.scopes.contains(&s) {
                    self.problem(
                        format!("{key}.scopes"),
                        format_args!(
                            "{s:?} is not a scope of API {:?} (its scopes: {})",
                            api.identifier,
                            api.scopes.join(" ")
                        ),
                    );
                } else if !scopes.contains(&s) {
                    scopes.push(s);
                }
            }
            let id = (g.client.clone(), g.api.clone(), g.subject);
            if grants.contains_key(&id) {
                self.problem(
                    &key,
                    format_args!(
                        "client {:?} already has a {} grant for API {:?}; merge the two",
                        g.client,
                        match g.subject {
                            Subject::Client => "client",
                            Subject::User => "user",
                        },
                        g.api
                    ),
                );
                continue;
            }
            if g.subject == Subject::Client {
                client.client_grant_apis.push(g.api.clone());
            }
            grants.insert(id, Grant { scopes });
        }

        let mut plugins: Vec<PluginConfig> = Vec::new();
        for (i, raw_plugin) in raw.plugins {
            let key = format!("plugins[{i}]");
            if let Some(p) = self.plugin(&key, raw_plugin, &raw.named_apis, runtime.fuel) {
                if plugins.iter().any(|q| q.name == p.name) {
                    self.problem(
                        format!("{key}.name"),
                        format_args!("{:?} is already used by another plugin", p.name),
                    );
                    continue;
                }
                plugins.push(p);
            }
        }

        Some(Config {
            path: path.to_owned(),
            server: server?,
            signing,
            store,
            claims: ClaimsConfig {
                require_namespace: raw.claims.require_namespace,
            },
            log: LogConfig {
                format: raw.log.format,
                audit,
            },
            metrics,
            trace_keep: raw.trace.keep,
            trace_redact,
            runtime,
            apis,
            api_index,
            web_origins: clients
                .values()
                .flat_map(|c| c.allowed_origins.iter().cloned())
                .collect(),
            clients: clients
                .into_iter()
                .map(|(id, c)| (id, Arc::new(c)))
                .collect(),
            grants,
            plugins,
            warnings: std::mem::take(&mut self.warnings),
        })
    }

    fn server(&mut self, raw: RawServer) -> ServerConfig {
        match url::Url::parse(&raw.issuer) {
            Ok(u) => {
                let loopback = matches!(u.host_str(), Some("localhost" | "127.0.0.1" | "[::1]"));
                if u.scheme() != "https" && !(u.scheme() == "http" && loopback) {
                    self.problem(
                        "server.issuer",
                        "must be an https:// URL (http:// is allowed only for localhost, 127.0.0.1 and [::1])",
                    );
                }
                if u.query().is_some() || u.fragment().is_some() {
                    self.problem(
                        "server.issuer",
                        "must not have a query or fragment (OpenID Connect Discovery §3)",
                    );
                }
            }
            Err(e) => self.problem(
                "server.issuer",
                format_args!(
                    "{:?} is not a URL ({e}); write e.g. \"https://auth.example.com\"",
                    raw.issuer
                ),
            ),
        }
        let listen = match raw.listen.parse::<SocketAddr>() {
            Ok(a) => a,
            Err(_) => {
                self.problem(
                    "server.listen",
                    format_args!(
                        "{:?} is not an IP address and port; write e.g. \"127.0.0.1:8080\"",
                        raw.listen
                    ),
                );
                SocketAddr::from(([127, 0, 0, 1], 0))
            }
        };
        let l = raw.limits;
        let mut range = |key: &str, value: u64, min: u64, max: u64| {
            if !(min..=max).contains(&value) {
                self.problem(
                    format!("server.limits.{key}"),
                    format_args!("{value} is out of range; use {min} to {max}"),
                );
            }
        };
        range(
            "header_read_timeout_ms",
            l.header_read_timeout_ms,
            100,
            600_000,
        );
        range("request_timeout_ms", l.request_timeout_ms, 100, 600_000);
        range("max_connections", l.max_connections.into(), 1, 1_000_000);
        range("max_headers", l.max_headers.into(), 16, 1000);
        range(
            "max_header_bytes",
            l.max_header_bytes.into(),
            1024,
            60 * 1024,
        );
        let mut trusted_proxies = Vec::new();
        for (i, text) in raw.trusted_proxies.iter().enumerate() {
            let net = text
                .parse::<ipnet::IpNet>()
                .or_else(|_| text.parse::<std::net::IpAddr>().map(ipnet::IpNet::from));
            match net {
                Ok(net) => trusted_proxies.push(net),
                Err(_) => self.problem(
                    format!("server.trusted_proxies[{i}]"),
                    format_args!(
                        "{text:?} is not an IP address or network; write e.g. \"10.0.0.5\" or \"10.0.0.0/8\""
                    ),
                ),
            }
        }
        ServerConfig {
            issuer: raw.issuer,
            listen,
            trusted_proxies,
            limits: HttpLimits {
                header_read_timeout: Duration::from_millis(l.header_read_timeout_ms),
                request_timeout: Duration::from_millis(l.request_timeout_ms),
                max_connections: l.max_connections as usize,
                max_headers: l.max_headers as usize,
                max_header_bytes: l.max_header_bytes as usize,
            },
        }
    }

    fn signing(&mut self, raw: RawSigning, store: &StoreConfig) -> SigningConfig {
        if raw.pre_publication_delay_secs > MAX_PRE_PUBLICATION_DELAY_SECS {
            self.problem(
                "signing.pre_publication_delay_secs",
                format_args!(
                    "{} is out of range; use 0 to {MAX_PRE_PUBLICATION_DELAY_SECS}",
                    raw.pre_publication_delay_secs
                ),
            );
        }
        let kek_text = match (&raw.kek_env, &raw.kek_file) {
            (Some(_), Some(_)) => {
                self.problem("signing", "set kek_env or kek_file, not both");
                None
            }
            (Some(var), None) => match (self.env)(var) {
                Some(text) => Some((
                    "signing.kek_env",
                    format!("environment variable {var}"),
                    text,
                )),
                None => {
                    self.problem(
                        "signing.kek_env",
                        format_args!(
                            "environment variable {var} is not set; make a key-encryption key with `tessera keys new-kek`"
                        ),
                    );
                    None
                }
            },
            (None, Some(file)) => {
                let path = self.resolve(file);
                match std::fs::read_to_string(&path) {
                    Ok(text) => {
                        warn_if_readable_by_others(&path, &mut self.warnings);
                        Some(("signing.kek_file", path.display().to_string(), text))
                    }
                    Err(e) => {
                        self.problem(
                            "signing.kek_file",
                            format_args!("cannot read {}: {e}", path.display()),
                        );
                        None
                    }
                }
            }
            (None, None) => None,
        };
        let kek = kek_text.and_then(|(key, source, text)| match Kek::from_base64(&text) {
            Ok(kek) => Some(Arc::new(kek)),
            Err(why) => {
                self.problem(key, format_args!("{source} {why}"));
                None
            }
        });
        let has_kek = raw.kek_env.is_some() || raw.kek_file.is_some();
        if has_kek && raw.key_dir.is_some() {
            self.problem(
                "signing.key_dir",
                "with a key-encryption key the signing keys live in the store; remove key_dir \
                 (`tessera keys import DIR` moves a folder's keys into the store)",
            );
        }
        if !has_kek && store.is_postgres() {
            self.problem(
                "signing",
                "a PostgreSQL store keeps the signing keys in the database, sealed with a \
                 key-encryption key: set kek_env or kek_file (make one with `tessera keys new-kek`)",
            );
        }
        SigningConfig {
            algorithm: raw.algorithm,
            id_token_algorithm: raw.id_token_algorithm,
            algorithms: Vec::new(),
            key_dir: self.resolve(raw.key_dir.as_deref().unwrap_or(Path::new("data/keys"))),
            kek,
            pre_publication_delay: Duration::from_secs(raw.pre_publication_delay_secs),
        }
    }

    fn store(&mut self, raw: RawStore) -> StoreConfig {
        let mut range = |key: &str, value: u64, min: u64, max: u64| {
            if !(min..=max).contains(&value) {
                self.problem(
                    format!("store.{key}"),
                    format_args!("{value} is out of range; use {min} to {max}"),
                );
            }
        };
        if let Some(n) = raw.max_connections {
            range("max_connections", n, 1, 1_000);
        }
        range("connect_timeout_secs", raw.connect_timeout_secs, 1, 300);
        range(
            "statement_timeout_secs",
            raw.statement_timeout_secs,
            1,
            3_600,
        );
        let pool = crate::store::PoolSettings {
            max_connections: raw.max_connections.and_then(|n| u32::try_from(n).ok()),
            connect_timeout: Duration::from_secs(raw.connect_timeout_secs),
            statement_timeout: Duration::from_secs(raw.statement_timeout_secs),
        };
        // The environment wins over the file; a problem with it names it.
        let (key, url) = match (self.env)(STORE_URL_ENV).filter(|u| !u.trim().is_empty()) {
            Some(url) => (STORE_URL_ENV, url.trim().to_owned()),
            None => (
                "store.url",
                raw.url
                    .unwrap_or_else(|| "sqlite://data/tessera.db".to_owned()),
            ),
        };
        if let Some(rest) = url.strip_prefix("sqlite://") {
            if rest.is_empty() {
                self.problem(
                    key,
                    "sqlite:// needs a file path, e.g. \"sqlite://data/tessera.db\"",
                );
            }
            let file = self.resolve(Path::new(rest));
            return StoreConfig {
                url: format!("sqlite://{}", file.display()),
                pool,
            };
        }
        if !(url.starts_with("postgres://") || url.starts_with("postgresql://")) {
            self.problem(
                key,
                format_args!(
                    "{:?} is neither sqlite://PATH nor postgres://USER@HOST:PORT/DATABASE",
                    crate::store::redacted_url(&url)
                ),
            );
        }
        StoreConfig { url, pool }
    }

    fn api(&mut self, key: &str, raw: RawApi) -> Option<Api> {
        let before = self.problems.len();
        let key = match raw.identifier.as_str() {
            "" => key.to_owned(),
            id => format!("apis[{id}]"),
        };
        if let Err(why) = check_api_identifier(&raw.identifier) {
            self.problem(format!("{key}.identifier"), why);
        }
        let mut scopes: Vec<String> = Vec::new();
        for s in raw.scopes {
            if !is_scope_token(&s) {
                self.problem(
                    format!("{key}.scopes"),
                    format_args!("{s:?} is not a valid scope (RFC 6749 §3.3: printable ASCII, no spaces, quotes or backslashes)"),
                );
            } else if scopes.contains(&s) {
                self.problem(
                    format!("{key}.scopes"),
                    format_args!("{s:?} is listed twice"),
                );
            } else {
                scopes.push(s);
            }
        }
        if raw.identifier == ADMIN_AUDIENCE {
            self.admin_api_scopes(&key, &scopes);
        }
        if !(60..=86_400).contains(&raw.token_lifetime_secs) {
            self.problem(
                format!("{key}.token_lifetime_secs"),
                format_args!(
                    "{} is out of range; use 60 to 86400 seconds",
                    raw.token_lifetime_secs
                ),
            );
        }
        for (scope, words) in &raw.scope_descriptions {
            let field = format!("{key}.scope_descriptions");
            if !scopes.contains(scope) {
                self.problem(
                    field,
                    format_args!(
                        "{scope:?} is not one of this API's scopes; describe only those in scopes"
                    ),
                );
            } else if let Err(why) = check_scope_description(words) {
                self.problem(field, format_args!("{scope:?}: {why}"));
            }
        }
        let metadata = self.metadata(&format!("{key}.metadata"), raw.metadata);
        (self.problems.len() == before).then(|| Api {
            name: raw.name.unwrap_or_else(|| raw.identifier.clone()),
            identifier: raw.identifier,
            scopes,
            token_lifetime: Duration::from_secs(raw.token_lifetime_secs),
            user_access: raw.user_access,
            client_access: raw.client_access,
            resource_servers: raw.resource_servers,
            scope_descriptions: raw.scope_descriptions,
            metadata,
        })
    }

    /// The admin API's scopes are Tessera's own: each opens an endpoint.
    fn admin_api_scopes(&mut self, key: &str, scopes: &[String]) {
        let known = || {
            ADMIN_SCOPES
                .iter()
                .map(|(scope, what)| format!("{scope} ({what})"))
                .collect::<Vec<_>>()
                .join(", ")
        };
        if scopes.is_empty() {
            self.problem(
                format!("{key}.scopes"),
                format_args!(
                    "is empty, so no admin token could open an endpoint; list the admin scopes \
                     its grants may give: {}",
                    known()
                ),
            );
        }
        for s in scopes {
            if !ADMIN_SCOPES.iter().any(|(scope, _)| scope == s) {
                self.problem(
                    format!("{key}.scopes"),
                    format_args!(
                        "{s:?} is not an admin scope; the admin scopes are {}",
                        known()
                    ),
                );
            }
        }
    }

    fn client(
        &mut self,
        key: &str,
        raw: RawClient,
        default_id_token_algorithm: Algorithm,
    ) -> Option<Client> {
        let before = self.problems.len();
        let key = if is_client_id(&raw.id) {
            format!("clients[{}]", raw.id)
        } else {
            self.problem(
                format!("{key}.id"),
                format_args!(
                    "{:?} is not a valid client id: use 1 to 128 letters, digits and . _ ~ -",
                    raw.id
                ),
            );
            key.to_owned()
        };
        let secret = match (raw.secret_hash, raw.secret_env) {
            (Some(_), Some(_)) => {
                self.problem(&key, "set secret_hash or secret_env, not both");
                None
            }
            (Some(h), None) => match SecretHash::parse(&h) {
                Ok(h) => Some(h),
                Err(why) => {
                    self.problem(
                        format!("{key}.secret_hash"),
                        format_args!(
                            "{why}; run `tessera secret new` to make a secret and its hash"
                        ),
                    );
                    None
                }
            },
            (None, Some(var)) => match (self.env)(&var) {
                Some(secret) if secret.len() >= 16 => Some(SecretHash::of(&secret)),
                Some(_) => {
                    self.problem(
                        format!("{key}.secret_env"),
                        format_args!("environment variable {var} holds fewer than 16 characters; use `tessera secret new`"),
                    );
                    None
                }
                None => {
                    self.problem(
                        format!("{key}.secret_env"),
                        format_args!("environment variable {var} is not set"),
                    );
                    None
                }
            },
            (None, None) => None,
        };
        let keys = self.client_keys(&key, raw.jwks, raw.jwks_file.as_deref());
        if raw.app_type.is_confidential()
            && secret.is_none()
            && keys.is_none()
            && self.problems.len() == before
        {
            self.problem(
                &key,
                format_args!(
                    "a {} client is confidential and needs secret_hash or secret_env (run \
                     `tessera secret new`), or its public keys in jwks or jwks_file",
                    raw.app_type.as_str()
                ),
            );
        }
        if secret.is_some() && keys.is_some() {
            self.problem(
                &key,
                "authenticates with a secret or with its keys (private_key_jwt), not both; \
                 remove one",
            );
        }
        if !raw.app_type.is_confidential() && keys.is_some() {
            self.problem(
                &key,
                format_args!(
                    "a {} client is public: it cannot keep a private key, so it cannot sign \
                     assertions; remove jwks",
                    raw.app_type.as_str()
                ),
            );
        }
        if !raw.app_type.is_confidential() && secret.is_some() {
            self.problem(
                &key,
                format_args!(
                    "a {} client is public and cannot keep a secret; remove the secret",
                    raw.app_type.as_str()
                ),
            );
        }
        for (field, uris) in [
            ("redirect_uris", &raw.redirect_uris),
            ("post_logout_redirect_uris", &raw.post_logout_redirect_uris),
        ] {
            if raw.app_type == AppType::Machine && !uris.is_empty() {
                self.problem(
                    format!("{key}.{field}"),
                    "machine clients do not take part in user flows; remove the URIs",
                );
            }
            for uri in uris {
                if let Err(why) = check_redirect_uri(uri, raw.app_type) {
                    self.problem(format!("{key}.{field}"), format_args!("{uri:?}: {why}"));
                }
            }
        }
        if raw.refresh_reuse_leeway_secs > MAX_REFRESH_REUSE_LEEWAY_SECS {
            self.problem(
                format!("{key}.refresh_reuse_leeway_secs"),
                format_args!(
                    "{} is out of range; use 0 to {MAX_REFRESH_REUSE_LEEWAY_SECS} seconds \
                     (a retry needs seconds, not minutes)",
                    raw.refresh_reuse_leeway_secs
                ),
            );
        }
        if let Some(method) = raw.token_endpoint_auth_method {
            let fits = match method {
                AuthMethod::ClientSecretBasic | AuthMethod::ClientSecretPost => secret.is_some(),
                AuthMethod::PrivateKeyJwt => keys.is_some(),
                AuthMethod::None => !raw.app_type.is_confidential(),
            };
            if !fits {
                let needs = match method {
                    AuthMethod::ClientSecretBasic | AuthMethod::ClientSecretPost => {
                        "a secret (secret_hash or secret_env)"
                    }
                    AuthMethod::PrivateKeyJwt => "public keys (jwks or jwks_file)",
                    AuthMethod::None => "a public client (spa or native)",
                };
                self.problem(
                    format!("{key}.token_endpoint_auth_method"),
                    format_args!("{} needs {needs}", method.as_str()),
                );
            }
        }
        if raw.app_type == AppType::Machine && !raw.allowed_origins.is_empty() {
            self.problem(
                format!("{key}.allowed_origins"),
                "a machine client runs on a server, not in a browser; remove allowed_origins",
            );
        }
        for origin in &raw.allowed_origins {
            if let Err(why) = check_origin(origin) {
                self.problem(
                    format!("{key}.allowed_origins"),
                    format_args!("{origin:?}: {why}"),
                );
            }
        }
        let metadata = self.metadata(&format!("{key}.metadata"), raw.metadata);
        (self.problems.len() == before).then(|| Client {
            auth_method: raw.token_endpoint_auth_method,
            first_party: raw.first_party,
            allowed_origins: raw.allowed_origins,
            trace: raw.trace,
            id_token_algorithm: raw
                .id_token_signed_response_alg
                .unwrap_or(default_id_token_algorithm),
            name: raw.name.unwrap_or_else(|| raw.id.clone()),
            id: raw.id,
            app_type: raw.app_type,
            secret,
            keys,
            redirect_uris: raw.redirect_uris,
            post_logout_redirect_uris: raw.post_logout_redirect_uris,
            metadata,
            client_grant_apis: Vec::new(),
            refresh_reuse_leeway: Duration::from_secs(raw.refresh_reuse_leeway_secs),
        })
    }

    fn plugin(
        &mut self,
        key: &str,
        raw: RawPlugin,
        apis: &HashSet<String>,
        fuel_enabled: bool,
    ) -> Option<PluginConfig> {
        let before = self.problems.len();
        let key = if is_plugin_name(&raw.name) {
            format!("plugins[{}]", raw.name)
        } else {
            self.problem(
                format!("{key}.name"),
                format_args!(
                    "{:?} is not a valid plugin name: use 1 to 64 lowercase letters, digits, - and _",
                    raw.name
                ),
            );
            key.to_owned()
        };
        if let Some(stages) = &raw.stages {
            if stages.is_empty() {
                self.problem(
                    format!("{key}.stages"),
                    "is empty; leave it out to run at every stage the plugin exports",
                );
            }
            let unique: HashSet<_> = stages.iter().collect();
            if unique.len() != stages.len() {
                self.problem(format!("{key}.stages"), "lists a stage twice");
            }
        }
        for a in &raw.apis {
            if !apis.contains(a) {
                self.problem(
                    format!("{key}.apis"),
                    format_args!("no API has identifier {a:?}"),
                );
            }
        }
        if !(1..=MAX_PLUGIN_TIMEOUT_MS).contains(&raw.timeout_ms) {
            self.problem(
                format!("{key}.timeout_ms"),
                format_args!(
                    "{} is out of range; use 1 to {MAX_PLUGIN_TIMEOUT_MS}",
                    raw.timeout_ms
                ),
            );
        }
        if !(1..=MAX_PLUGIN_MEMORY_MB).contains(&raw.memory_mb) {
            self.problem(
                format!("{key}.memory_mb"),
                format_args!(
                    "{} is out of range; use 1 to {MAX_PLUGIN_MEMORY_MB}",
                    raw.memory_mb
                ),
            );
        }
        if raw.warm_instances.is_some_and(|n| n > MAX_WARM_INSTANCES) {
            self.problem(
                format!("{key}.warm_instances"),
                format_args!(
                    "{} is out of range; use 0 (a fresh instance per call) to {MAX_WARM_INSTANCES}",
                    raw.warm_instances.unwrap_or_default()
                ),
            );
        }
        match raw.fuel {
            Some(0) => self.problem(format!("{key}.fuel"), "must be at least 1"),
            Some(_) if !fuel_enabled => self.problem(
                format!("{key}.fuel"),
                "needs fuel counting in the engine: add fuel = true under [runtime] (it costs every plugin some speed)",
            ),
            _ => {}
        }
        if raw.warm_max_calls == 0 {
            self.problem(
                format!("{key}.warm_max_calls"),
                "must be at least 1 (calls one reused instance serves)",
            );
        }
        let mut config = HashMap::new();
        for (k, v) in raw.config {
            match toml_to_json(&v, 0) {
                Ok(Value::String(s)) => {
                    config.insert(k, s);
                }
                Ok(other) => {
                    config.insert(k, other.to_string());
                }
                Err(why) => self.problem(format!("{key}.config.{k}"), why),
            }
        }
        let mut secrets = HashMap::new();
        for (name, src) in raw.secrets {
            let skey = format!("{key}.secrets.{name}");
            match (src.env, src.file) {
                (Some(var), None) => match (self.env)(&var) {
                    Some(v) => {
                        secrets.insert(name, PluginSecret(v));
                    }
                    None => {
                        self.problem(skey, format_args!("environment variable {var} is not set"))
                    }
                },
                (None, Some(file)) => {
                    let file = self.resolve(&file);
                    match std::fs::read_to_string(&file) {
                        Ok(v) => {
                            secrets.insert(
                                name,
                                PluginSecret(v.trim_end_matches(['\r', '\n']).to_owned()),
                            );
                        }
                        Err(e) => {
                            self.problem(skey, format_args!("cannot read {}: {e}", file.display()))
                        }
                    }
                }
                _ => self.problem(
                    skey,
                    "write exactly one of { env = \"VAR\" } or { file = \"path\" }",
                ),
            }
        }
        let mut signers = Vec::new();
        for text in &raw.signers {
            match text.parse::<PublicKey>() {
                Ok(signer) if signers.contains(&signer) => self.problem(
                    format!("{key}.signers"),
                    format_args!("lists {signer} twice"),
                ),
                Ok(signer) => signers.push(signer),
                Err(why) => self.problem(format!("{key}.signers"), why),
            }
        }
        let sample = raw.shadow_sample.unwrap_or(DEFAULT_SHADOW_SAMPLE);
        if !(sample > 0.0 && sample <= 1.0) {
            self.problem(
                format!("{key}.shadow_sample"),
                format_args!(
                    "{sample} is out of range; use a share above 0 and at most 1 (0.1: one call in ten)"
                ),
            );
        }
        if raw.shadow_sample.is_some() && raw.shadow_path.is_none() {
            self.problem(
                format!("{key}.shadow_sample"),
                "needs shadow_path, the candidate build to run beside this one",
            );
        }
        if raw.shadow_path.as_ref() == Some(&raw.path) {
            self.problem(
                format!("{key}.shadow_path"),
                "is the plugin's own path; point it at the candidate build",
            );
        }
        let mut origins: Vec<Origin> = Vec::new();
        for (i, text) in raw.egress.iter().enumerate() {
            match text.parse::<Origin>() {
                Ok(origin) if origins.contains(&origin) => self.problem(
                    format!("{key}.egress[{i}]"),
                    format_args!("lists {origin} twice"),
                ),
                Ok(origin) => origins.push(origin),
                Err(why) => self.problem(format!("{key}.egress[{i}]"), why),
            }
        }
        let max_response_bytes = raw
            .egress_max_bytes
            .unwrap_or(DEFAULT_MAX_RESPONSE_BYTES as u64);
        if !(1..=MAX_RESPONSE_BYTES as u64).contains(&max_response_bytes) {
            self.problem(
                format!("{key}.egress_max_bytes"),
                format_args!(
                    "{max_response_bytes} is out of range; use 1 to {MAX_RESPONSE_BYTES} bytes of response body"
                ),
            );
        }
        if raw.egress_max_bytes.is_some() && raw.egress.is_empty() {
            self.problem(
                format!("{key}.egress_max_bytes"),
                "needs egress, the origins the plugin may send requests to",
            );
        }
        let tls = match &raw.egress_ca_file {
            None => None,
            Some(_) if raw.egress.is_empty() => {
                self.problem(
                    format!("{key}.egress_ca_file"),
                    "needs egress, the origins the plugin may send requests to",
                );
                None
            }
            Some(written) => {
                let path = self.resolve(written);
                let trusted = std::fs::read_to_string(&path)
                    .map_err(|e| format!("cannot read {}: {e}", path.display()))
                    .and_then(|text| {
                        tls_trusting(&text).map_err(|why| format!("{}: {why}", path.display()))
                    });
                match trusted {
                    Ok(tls) => Some(tls),
                    Err(why) => {
                        self.problem(format!("{key}.egress_ca_file"), why);
                        None
                    }
                }
            }
        };
        let egress = Arc::new(EgressPolicy {
            origins,
            max_response_bytes: usize::try_from(max_response_bytes).unwrap_or(MAX_RESPONSE_BYTES),
            tls,
        });
        let shadow = raw.shadow_path.map(|written| ShadowConfig {
            path: self.resolve(&written),
            written_path: written,
            sample,
        });
        (self.problems.len() == before).then(|| PluginConfig {
            name: raw.name,
            key,
            path: self.resolve(&raw.path),
            written_path: raw.path,
            stages: raw.stages,
            apis: raw.apis,
            on_error: raw.on_error,
            timeout: Duration::from_millis(raw.timeout_ms),
            memory_bytes: (raw.memory_mb as usize) << 20,
            warm_instances: raw.warm_instances,
            warm_max_calls: raw.warm_max_calls,
            fuel: raw.fuel,
            config: Arc::new(config),
            secrets: Arc::new(secrets),
            signers,
            shadow,
            egress,
        })
    }

    /// A client's public keys, from `jwks` (inline) or `jwks_file` (a JSON
    /// JWK Set, read now and at every reload).
    fn client_keys(
        &mut self,
        key: &str,
        inline: Option<toml::Table>,
        file: Option<&Path>,
    ) -> Option<Arc<ClientKeys>> {
        let (field, set) = match (inline, file) {
            (None, None) => return None,
            (Some(_), Some(_)) => {
                self.problem(key, "set jwks or jwks_file, not both");
                return None;
            }
            (Some(table), None) => {
                let field = format!("{key}.jwks");
                match toml_to_json(&toml::Value::Table(table), 0) {
                    Ok(set) => (field, set),
                    Err(why) => {
                        self.problem(field, why);
                        return None;
                    }
                }
            }
            (None, Some(file)) => {
                let path = self.resolve(file);
                let field = format!("{key}.jwks_file: {}", path.display());
                let read = std::fs::File::open(&path).and_then(|f| {
                    let mut text = String::new();
                    std::io::Read::read_to_string(
                        &mut std::io::Read::take(f, MAX_JWKS_FILE_BYTES + 1),
                        &mut text,
                    )
                    .map(|_| text)
                });
                match read {
                    Ok(text) if text.len() as u64 > MAX_JWKS_FILE_BYTES => {
                        self.problem(
                            field,
                            format_args!("is over {MAX_JWKS_FILE_BYTES} bytes; a JWK Set of public keys is far smaller"),
                        );
                        return None;
                    }
                    Ok(text) => match serde_json::from_str(&text) {
                        Ok(set) => (field, set),
                        Err(e) => {
                            self.problem(field, format_args!("is not JSON: {e}"));
                            return None;
                        }
                    },
                    Err(e) => {
                        self.problem(field, format_args!("cannot read it: {e}"));
                        return None;
                    }
                }
            }
        };
        match ClientKeys::parse(&set) {
            Ok(keys) => Some(Arc::new(keys)),
            Err(why) => {
                self.problem(field, why);
                None
            }
        }
    }

    fn metadata(&mut self, key: &str, table: toml::Table) -> Map<String, Value> {
        let mut out = Map::new();
        for (k, v) in table {
            match toml_to_json(&v, 0) {
                Ok(v) => {
                    out.insert(k, v);
                }
                Err(why) => self.problem(format!("{key}.{k}"), why),
            }
        }
        for k in out.keys().filter(|k| looks_secret(k)) {
            self.warnings.push(format!(
                "{key}.{k}: looks like a secret; metadata reaches every plugin and can end up in \
                 tokens and logs. Give it to the plugins that need it as a plugin secret \
                 (secrets = {{ {k} = {{ env = \"VAR\" }} }}) instead"
            ));
        }
        let size = json_len(&out);
        if size > MAX_METADATA_BYTES {
            self.problem(
                key,
                format_args!("is {size} bytes as JSON; the limit is {MAX_METADATA_BYTES}"),
            );
        }
        out
    }
}

/// Bytes of `value` serialized as compact JSON, counted without building the
/// text.
pub fn json_len<T: serde::Serialize + ?Sized>(value: &T) -> usize {
    struct Count(usize);
    impl std::io::Write for Count {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0 += buf.len();
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let mut count = Count(0);
    // Serializing JSON values and maps cannot fail, and `Count` never does.
    let _ = serde_json::to_writer(&mut count, value);
    count.0
}

/// Whether a metadata key names a secret (`api_key`, `clientSecret`,
/// `password`, …).
/// A secret file others can read earns a warning (the configuration still
/// loads: the operator may have reasons).
fn warn_if_readable_by_others(path: &Path, warnings: &mut Vec<String>) {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        if let Ok(meta) = std::fs::metadata(path)
            && meta.permissions().mode() & 0o077 != 0
        {
            warnings.push(format!(
                "{} is readable by other users; run chmod 600 on it",
                path.display()
            ));
        }
    }
    #[cfg(not(unix))]
    let _ = (path, warnings);
}

fn looks_secret(key: &str) -> bool {
    let k: String = key
        .chars()
        .filter(|c| c.is_ascii_alphanumeric())
        .collect::<String>()
        .to_ascii_lowercase();
    [
        "secret",
        "password",
        "passwd",
        "apikey",
        "privatekey",
        "accesstoken",
        "refreshtoken",
        "bearer",
        "credential",
    ]
    .iter()
    .any(|word| k.contains(word))
}

/// Converts a TOML value to JSON, refusing datetimes and deep nesting.
fn toml_to_json(v: &toml::Value, depth: usize) -> Result<Value, String> {
    if depth > MAX_METADATA_DEPTH {
        return Err(format!("nests deeper than {MAX_METADATA_DEPTH} levels"));
    }
    Ok(match v {
        toml::Value::String(s) => Value::String(s.clone()),
        toml::Value::Integer(i) => Value::from(*i),
        toml::Value::Float(f) => serde_json::Number::from_f64(*f)
            .map(Value::Number)
            .ok_or_else(|| format!("{f} is not a finite number"))?,
        toml::Value::Boolean(b) => Value::Bool(*b),
        toml::Value::Datetime(_) => {
            return Err("dates are not supported here; write the date as a string".to_owned());
        }
        toml::Value::Array(a) => Value::Array(
            a.iter()
                .map(|x| toml_to_json(x, depth + 1))
                .collect::<Result<_, _>>()?,
        ),
        toml::Value::Table(t) => Value::Object(
            t.iter()
                .map(|(k, x)| Ok((k.clone(), toml_to_json(x, depth + 1)?)))
                .collect::<Result<_, String>>()?,
        ),
    })
}

/// RFC 6749 §3.3 `scope-token = 1*( %x21 / %x23-5B / %x5D-7E )`.
pub fn is_scope_token(s: &str) -> bool {
    !s.is_empty()
        && s.bytes()
            .all(|b| b == 0x21 || (0x23..=0x5b).contains(&b) || (0x5d..=0x7e).contains(&b))
}

/// Client ids are RFC 3986 unreserved characters, so they never need escaping
/// in Basic credentials, URLs or logs.
pub fn is_client_id(s: &str) -> bool {
    (1..=128).contains(&s.len())
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'~' | b'-'))
}

fn is_plugin_name(s: &str) -> bool {
    (1..=64).contains(&s.len())
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'-' | b'_'))
}

/// An API identifier is an absolute URI without a fragment (RFC 8707 §2).
pub fn check_api_identifier(id: &str) -> Result<(), String> {
    match url::Url::parse(id) {
        Ok(u) if u.fragment().is_some() => Err(format!(
            "{id:?} has a fragment; RFC 8707 resource identifiers must not"
        )),
        Ok(_) => Ok(()),
        Err(e) => Err(format!(
            "{id:?} is not an absolute URI ({e}); write e.g. \"https://orders.example.com\" or \"urn:example:orders\""
        )),
    }
}

/// The longest scope description, in characters: a line on the consent page.
const MAX_SCOPE_DESCRIPTION: usize = 200;

fn check_scope_description(words: &str) -> Result<(), String> {
    if words.trim().is_empty() {
        return Err("the description is empty; say in a few words what the scope allows".into());
    }
    if words.chars().count() > MAX_SCOPE_DESCRIPTION {
        return Err(format!(
            "the description is longer than {MAX_SCOPE_DESCRIPTION} characters; it is one line on the consent page"
        ));
    }
    if words.chars().any(char::is_control) {
        return Err("the description has a control character (a line break?); use one line".into());
    }
    Ok(())
}

/// An origin as browsers send it in `Origin` (RFC 6454 §6.1): scheme, host
/// and a port other than the default, nothing else, so that it can be
/// compared exactly.
fn check_origin(origin: &str) -> Result<(), String> {
    let u = url::Url::parse(origin)
        .map_err(|_| "is not an origin like https://app.example.com".to_owned())?;
    let loopback = matches!(u.host_str(), Some("localhost" | "127.0.0.1" | "[::1]"));
    match u.scheme() {
        "https" => {}
        "http" if loopback => {}
        "http" => {
            return Err("http:// is allowed only for loopback addresses; use https://".into());
        }
        _ => return Err("use https://, or http:// on loopback".into()),
    }
    let exact = u.origin().ascii_serialization();
    if exact != origin {
        return Err(format!(
            "an origin is a scheme, a host and maybe a port, with no path or trailing slash, as a browser sends it: write {exact:?}"
        ));
    }
    Ok(())
}

fn check_redirect_uri(uri: &str, app_type: AppType) -> Result<(), &'static str> {
    let u = url::Url::parse(uri).map_err(|_| "is not an absolute URL")?;
    if u.fragment().is_some() {
        return Err("must not have a fragment (RFC 6749 §3.1.2)");
    }
    let loopback = matches!(u.host_str(), Some("localhost" | "127.0.0.1" | "[::1]"));
    match u.scheme() {
        "https" => Ok(()),
        "http" if loopback => Ok(()),
        "http" => Err("http:// is allowed only for loopback addresses; use https://"),
        s if app_type == AppType::Native && s.contains('.') => Ok(()),
        _ => Err(
            "use https://, http:// on loopback, or (native apps) a reverse-DNS scheme like com.example.app:/callback",
        ),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn json_len_counts_the_serialized_text() {
        for v in [
            serde_json::json!({}),
            serde_json::json!({"a": 1, "b": [true, null, 1.5]}),
            serde_json::json!({"q\"uote": "line\nbreak \u{1} é 日本", "n": {"deep": ["x"]}}),
        ] {
            assert_eq!(super::json_len(&v), v.to_string().len(), "{v}");
        }
    }

    #[test]
    fn secret_looking_metadata_keys_are_recognised() {
        for key in [
            "api_key",
            "apiKey",
            "CRM-Secret",
            "db_password",
            "clientSecret",
            "privateKey",
        ] {
            assert!(looks_secret(key), "{key}");
        }
        for key in [
            "partner",
            "tier",
            "region",
            "key_owner",
            "tokens_per_minute",
        ] {
            assert!(!looks_secret(key), "{key}");
        }
    }

    use super::*;

    const HASH: &str = "sha256:0000000000000000000000000000000000000000000000000000000000000000";

    /// A key-encryption key in the test environment, as `TEST_KEK`.
    const TEST_KEK: &str = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";

    fn test_env(name: &str) -> Option<String> {
        match name {
            "ACME_SECRET" => Some("a-secret-of-sufficient-length".to_owned()),
            "TEST_KEK" => Some(TEST_KEK.to_owned()),
            "SHORT_KEK" => Some("AAECAwQFBgc=".to_owned()),
            _ => None,
        }
    }

    fn parse(text: &str) -> Result<Config, ConfigError> {
        Config::parse(Path::new("/etc/tessera/tessera.toml"), text, &test_env)
    }

    fn base() -> String {
        format!(
            r#"
[server]
issuer = "http://127.0.0.1:8080"

[[apis]]
identifier = "https://orders.example.com"
scopes = ["read:orders", "write:orders"]
metadata = {{ owner = "orders-team", nested = {{ a = [1, "x"] }} }}

[[clients]]
id = "acme-sync"
name = "ACME"
app_type = "machine"
secret_hash = "{HASH}"
metadata = {{ partner = "acme" }}

[[grants]]
client = "acme-sync"
api = "https://orders.example.com"
scopes = ["read:orders"]
"#
        )
    }

    fn problems(text: &str) -> String {
        parse(text)
            .expect_err("config should be rejected")
            .to_string()
    }

    #[test]
    fn valid_config_resolves_everything() {
        let c = parse(&base()).expect("valid");
        let api = c.api("https://orders.example.com").expect("api");
        assert_eq!(api.scopes, ["read:orders", "write:orders"]);
        assert_eq!(api.metadata["nested"]["a"][1], "x");
        let client = &c.clients["acme-sync"];
        assert_eq!(client.client_grant_apis, ["https://orders.example.com"]);
        let g = c
            .grant("acme-sync", "https://orders.example.com", Subject::Client)
            .expect("grant");
        assert_eq!(g.scopes, ["read:orders"]);
        assert_eq!(c.signing.key_dir, Path::new("/etc/tessera/data/keys"));
        assert_eq!(c.store.url, "sqlite:///etc/tessera/data/tessera.db");
    }

    #[test]
    fn scope_descriptions_describe_the_apis_own_scopes_in_one_line() {
        let with = |table: &str| {
            base().replace(
                "scopes = [\"read:orders\", \"write:orders\"]\n",
                &format!(
                    "scopes = [\"read:orders\", \"write:orders\"]\nscope_descriptions = {table}\n"
                ),
            )
        };
        let c = parse(&with("{ \"read:orders\" = \"See your orders\" }")).expect("valid");
        let api = c.api("https://orders.example.com").expect("api");
        assert_eq!(api.scope_descriptions["read:orders"], "See your orders");
        let e = problems(&with(
            "{ \"delete:orders\" = \"x\", \"read:orders\" = \"\", \"write:orders\" = \"a\\nb\" }",
        ));
        let key = "apis[https://orders.example.com].scope_descriptions";
        assert!(
            e.contains(&format!(
                "{key}: \"delete:orders\" is not one of this API's scopes"
            )),
            "{e}"
        );
        assert!(
            e.contains(&format!("{key}: \"read:orders\": the description is empty")),
            "{e}"
        );
        assert!(
            e.contains(&format!(
                "{key}: \"write:orders\": the description has a control character"
            )),
            "{e}"
        );
        let long = format!("{{ \"read:orders\" = \"{}\" }}", "x".repeat(201));
        assert!(problems(&with(&long)).contains("longer than 200 characters"));
    }

    #[test]
    fn clients_are_first_party_unless_they_say_otherwise() {
        let spa = |extra: &str| {
            base()
                + &format!(
                    "\n[[clients]]\nid = \"web\"\napp_type = \"spa\"\nredirect_uris = [\"https://app.example.com/cb\"]\n{extra}"
                )
        };
        assert!(parse(&spa("")).expect("valid").clients["web"].first_party);
        assert!(!parse(&spa("first_party = false\n")).expect("valid").clients["web"].first_party);
    }

    #[test]
    fn allowed_origins_are_exact_origins_of_browser_clients() {
        let spa = |origins: &str| {
            base()
                + &format!(
                    "\n[[clients]]\nid = \"web\"\napp_type = \"spa\"\nallowed_origins = {origins}\n"
                )
        };
        let c = parse(&spa(
            "[\"https://app.example.com\", \"http://localhost:5173\"]",
        ))
        .expect("valid");
        assert_eq!(
            c.clients["web"].allowed_origins,
            ["https://app.example.com", "http://localhost:5173"]
        );
        let e = problems(&spa(
            "[\"https://app.example.com/\", \"http://app.example.com\", \"HTTPS://App.example.com\", \"https://app.example.com:443\", \"app.example.com\"]",
        ));
        let key = "clients[web].allowed_origins";
        assert!(e.contains(&format!("{key}: \"https://app.example.com/\": an origin is a scheme, a host and maybe a port")), "{e}");
        assert!(e.contains("write \"https://app.example.com\""), "{e}");
        assert!(
            e.contains(&format!(
                "{key}: \"http://app.example.com\": http:// is allowed only for loopback"
            )),
            "{e}"
        );
        assert!(
            e.contains("\"HTTPS://App.example.com\": an origin is"),
            "{e}"
        );
        assert!(
            e.contains("\"https://app.example.com:443\": an origin is"),
            "{e}"
        );
        assert!(e.contains("\"app.example.com\": is not an origin"), "{e}");
        let machine = base().replace(
            "secret_hash = \"{HASH}\"\n"
                .replace("{HASH}", HASH)
                .as_str(),
            &format!("secret_hash = \"{HASH}\"\nallowed_origins = [\"https://app.example.com\"]\n"),
        );
        assert!(
            problems(&machine)
                .contains("clients[acme-sync].allowed_origins: a machine client runs on a server")
        );
    }

    #[test]
    fn resource_servers_are_known_confidential_clients() {
        let with = |servers: &str| {
            base().replace(
                "scopes = [\"read:orders\", \"write:orders\"]\nmetadata",
                &format!("scopes = [\"read:orders\", \"write:orders\"]\nresource_servers = {servers}\nmetadata"),
            ) + "\n[[clients]]\nid = \"spa\"\napp_type = \"spa\"\nredirect_uris = [\"https://app.example.com/cb\"]\n"
        };
        let c = parse(&with("[\"acme-sync\"]")).expect("valid");
        assert_eq!(
            c.api("https://orders.example.com")
                .expect("api")
                .resource_servers,
            ["acme-sync"]
        );
        let e = problems(&with("[\"nobody\"]"));
        assert!(
            e.contains("apis[https://orders.example.com].resource_servers")
                && e.contains("no client has id \"nobody\""),
            "{e}"
        );
        let e = problems(&with("[\"spa\"]"));
        assert!(e.contains("public spa application"), "{e}");
    }

    #[test]
    fn unknown_keys_are_errors_with_position() {
        let e = problems(&format!("{}\n[signing]\nalgoritm = \"ES256\"\n", base()));
        assert!(e.contains("unknown field `algoritm`"), "{e}");
        assert!(e.contains("line"), "{e}");
    }

    #[test]
    fn every_problem_of_the_file_is_reported_at_once() {
        let text = base().replace("secret_hash =", "secrte_hash =").replace(
            "scopes = [\"read:orders\"]",
            "scopes = [\"read:orders\"]\nsubjct = \"client\"",
        ) + "\n[signing]\nalgoritm = \"ES256\"\nkey_dri = \"keys\"\n\n[[plugins]]\nname = \"p\"\npath = \"p.wasm\"\ntimeout_ms = \"fast\"\n\n[metric]\nlisten = \"\"\n";
        let e = problems(&text);
        for expected in [
            "clients[acme-sync].secrte_hash (line 14): unknown field `secrte_hash`",
            "grants[0].subjct (line 21): unknown field `subjct`",
            "signing.algoritm (line 24): unknown field `algoritm`",
            "signing.key_dri (line 25): unknown field `key_dri`",
            "plugins[p].timeout_ms (line 30): invalid type: string \"fast\", expected u64",
            "metric (line 32): unknown section",
            // What follows from the unknown key: the client has no secret.
            "clients[acme-sync]: a machine client is confidential",
        ] {
            assert!(e.contains(expected), "missing {expected:?} in\n{e}");
        }
        assert!(e.contains("7 problems"), "{e}");
    }

    #[test]
    fn an_entry_with_problems_still_exists_for_references_to_it() {
        // The client's own problem is reported; the grant naming it is fine.
        let e = problems(&base().replace(HASH, "sha256:abc"));
        assert!(e.contains("clients[acme-sync].secret_hash"), "{e}");
        assert!(!e.contains("no client has id"), "{e}");
        assert!(e.contains("1 problem"), "{e}");
        // Likewise for an API that could not even be read, and a plugin's
        // apis filter naming it.
        let text = base().replace(
            "scopes = [\"read:orders\", \"write:orders\"]",
            "scopes = \"read:orders\"",
        ) + "\n[[plugins]]\nname = \"p\"\npath = \"p.wasm\"\napis = [\"https://orders.example.com\"]\n";
        let e = problems(&text);
        assert!(e.contains("apis[https://orders.example.com].scopes"), "{e}");
        assert!(!e.contains("no API has identifier"), "{e}");
        assert!(e.contains("1 problem"), "{e}");
    }

    #[test]
    fn syntax_errors_and_misshapen_sections_name_their_place() {
        let e = problems("[server]\nissuer = \"http://127.0.0.1:8080\n");
        assert!(e.contains("line 2, column"), "{e}");
        let e = problems(&format!(
            "{}\n[clients]\nid = \"x\"\n",
            base().replace("[[clients]]", "[[clientz]]")
        ));
        assert!(e.contains("clientz (line 10): unknown section"), "{e}");
        assert!(e.contains("clients (line"), "{e}");
        assert!(e.contains("must be an array of tables"), "{e}");
        let e = problems("[signing]\nalgorithm = \"ES256\"\n");
        assert!(e.contains("server: missing"), "{e}");
    }

    #[test]
    fn the_admin_api_declares_admin_scopes_only() {
        let admin = |scopes: &str| {
            format!(
                "{}\n[[apis]]\nidentifier = \"urn:tessera:admin\"\nscopes = {scopes}\n",
                base()
            )
        };
        let e = problems(&admin("[]"));
        assert!(
            e.contains("apis[urn:tessera:admin].scopes: is empty")
                && e.contains("tessera:plugins:read (GET /admin/plugins)"),
            "{e}"
        );
        let e = problems(&admin("[\"tessera:reload\", \"admin\"]"));
        assert!(e.contains("\"admin\" is not an admin scope"), "{e}");
        assert!(e.contains("1 problem"), "{e}");
        parse(&admin("[\"tessera:plugins:read\", \"tessera:reload\"]")).expect("valid");
    }

    #[test]
    fn duplicates_and_dangling_references_are_named() {
        let text = format!(
            "{}\n[[clients]]\nid = \"acme-sync\"\napp_type = \"machine\"\nsecret_hash = \"{HASH}\"\n\
             [[grants]]\nclient = \"nobody\"\napi = \"https://orders.example.com\"\n\
             [[grants]]\nclient = \"acme-sync\"\napi = \"https://nowhere.example.com\"\n",
            base()
        );
        let e = problems(&text);
        assert!(
            e.contains("clients[1].id: \"acme-sync\" is already used"),
            "{e}"
        );
        assert!(
            e.contains("grants[1].client: no client has id \"nobody\""),
            "{e}"
        );
        assert!(
            e.contains("grants[2].api: no API has identifier \"https://nowhere.example.com\""),
            "{e}"
        );
    }

    #[test]
    fn malformed_hash_url_and_missing_env_are_named() {
        let text = base()
            .replace(HASH, "sha256:abc")
            .replace("https://orders.example.com\"\nscopes", "orders\"\nscopes")
            + "\n[[clients]]\nid = \"b\"\napp_type = \"machine\"\nsecret_env = \"MISSING_VAR\"\n";
        let e = problems(&text);
        assert!(e.contains("clients[acme-sync].secret_hash"), "{e}");
        assert!(e.contains("tessera secret new"), "{e}");
        assert!(e.contains("apis[orders].identifier"), "{e}");
        assert!(
            e.contains("clients[b].secret_env: environment variable MISSING_VAR is not set"),
            "{e}"
        );
    }

    #[test]
    fn signing_keys_live_in_the_store_with_a_kek_and_postgres_needs_one() {
        let c = parse(&base()).expect("valid");
        assert!(c.signing.kek.is_none());
        assert_eq!(c.signing.key_dir, Path::new("/etc/tessera/data/keys"));
        assert_eq!(
            c.signing.pre_publication_delay,
            Duration::from_secs(DEFAULT_PRE_PUBLICATION_DELAY_SECS)
        );

        let c = parse(
            &(base() + "\n[signing]\nkek_env = \"TEST_KEK\"\npre_publication_delay_secs = 0\n"),
        )
        .expect("valid");
        let kek = c.signing.kek.as_ref().expect("kek");
        assert!(!format!("{:?}", c.signing).contains(TEST_KEK));
        assert_eq!(kek.id().len(), 12);
        assert_eq!(c.signing.pre_publication_delay, Duration::ZERO);

        let dir = tempfile::tempdir().expect("tempdir");
        let file = dir.path().join("kek");
        std::fs::write(&file, format!("{TEST_KEK}\n")).expect("write");
        let c = parse(&(base() + &format!("\n[signing]\nkek_file = {:?}\n", file))).expect("valid");
        assert_eq!(c.signing.kek.as_ref().expect("kek").id(), kek.id());

        let postgres = "\n[store]\nurl = \"postgres://db/t\"\n";
        let e = problems(&(base() + postgres));
        assert!(
            e.contains("signing: a PostgreSQL store keeps the signing keys in the database"),
            "{e}"
        );
        let e = problems(
            &(base()
                + postgres
                + "\n[signing]\nkek_env = \"NO_SUCH_VAR\"\nkey_dir = \"keys\"\n\
                   pre_publication_delay_secs = 9999999\n"),
        );
        for expected in [
            "signing.kek_env: environment variable NO_SUCH_VAR is not set",
            "signing.key_dir: with a key-encryption key the signing keys live in the store",
            "signing.pre_publication_delay_secs: 9999999 is out of range; use 0 to 604800",
        ] {
            assert!(e.contains(expected), "{expected} in {e}");
        }
        let e = problems(&(base() + "\n[signing]\nkek_env = \"SHORT_KEK\"\n"));
        assert!(
            e.contains(
                "signing.kek_env: environment variable SHORT_KEK decodes to 8 bytes, not 32"
            ),
            "{e}"
        );
        assert!(!e.contains("AAECAwQFBgc"), "the KEK is not repeated: {e}");
        let e =
            problems(&(base() + "\n[signing]\nkek_env = \"TEST_KEK\"\nkek_file = \"/run/kek\"\n"));
        assert!(
            e.contains("signing: set kek_env or kek_file, not both"),
            "{e}"
        );
        let e = problems(&(base() + "\n[signing]\nkek_file = \"/no/such/kek\"\n"));
        assert!(
            e.contains("signing.kek_file: cannot read /no/such/kek"),
            "{e}"
        );
    }

    #[test]
    fn the_store_takes_postgres_its_pool_settings_and_the_environment() {
        let c = parse(&base()).expect("valid");
        assert_eq!(c.store.pool, crate::store::PoolSettings::default());
        let text = base()
            + "\n[store]\nurl = \"postgres://tessera:hunter2@db:5432/tessera\"\n\
               max_connections = 20\nconnect_timeout_secs = 2\nstatement_timeout_secs = 3\n\
               \n[signing]\nkek_env = \"TEST_KEK\"\n";
        let c = parse(&text).expect("valid");
        assert_eq!(c.store.url, "postgres://tessera:hunter2@db:5432/tessera");
        assert_eq!(c.store.pool.max_connections, Some(20));
        assert_eq!(c.store.pool.connect_timeout, Duration::from_secs(2));
        assert_eq!(c.store.pool.statement_timeout, Duration::from_secs(3));
        let debug = format!("{:?}", c.store);
        assert!(
            !debug.contains("hunter2") && debug.contains("***"),
            "{debug}"
        );

        // TESSERA_STORE_URL wins over the file, and a problem with it names it.
        let with_env = |url: &'static str| {
            Config::parse(
                Path::new("/etc/tessera/tessera.toml"),
                &text,
                &move |name| match name {
                    STORE_URL_ENV => Some(url.to_owned()),
                    other => test_env(other),
                },
            )
        };
        let c = with_env("postgres://other@db2/t").expect("valid");
        assert_eq!(c.store.url, "postgres://other@db2/t");
        let c = with_env("sqlite://local.db").expect("valid");
        assert_eq!(c.store.url, "sqlite:///etc/tessera/local.db");
        let e = with_env("mysql://root:hunter2@db/x")
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("TESSERA_STORE_URL: \"mysql://root:***@db/x\" is neither"),
            "{e}"
        );
        assert!(!e.contains("hunter2"), "{e}");

        let e = problems(
            &(base()
                + "\n[store]\nmax_connections = 0\nconnect_timeout_secs = 0\nstatement_timeout_secs = 7200\n"),
        );
        for key in [
            "store.max_connections: 0 is out of range; use 1 to 1000",
            "store.connect_timeout_secs: 0 is out of range; use 1 to 300",
            "store.statement_timeout_secs: 7200 is out of range; use 1 to 3600",
        ] {
            assert!(e.contains(key), "{key} in {e}");
        }
    }

    #[test]
    fn a_refresh_reuse_leeway_is_seconds_and_short() {
        let c = parse(&base()).expect("valid");
        assert_eq!(c.clients["acme-sync"].refresh_reuse_leeway, Duration::ZERO);
        let text = base().replace(
            "metadata = { partner = \"acme\" }",
            "refresh_reuse_leeway_secs = 10\nmetadata = { partner = \"acme\" }",
        );
        let c = parse(&text).expect("valid");
        assert_eq!(
            c.clients["acme-sync"].refresh_reuse_leeway,
            Duration::from_secs(10)
        );
        let e = problems(&text.replace("= 10", "= 600"));
        assert!(
            e.contains("clients[acme-sync].refresh_reuse_leeway_secs: 600 is out of range"),
            "{e}"
        );
    }

    #[test]
    fn secret_env_is_hashed() {
        let text = base().replace(
            &format!("secret_hash = \"{HASH}\""),
            "secret_env = \"ACME_SECRET\"",
        );
        let c = parse(&text).expect("valid");
        let h = c.clients["acme-sync"].secret.as_ref().expect("hash");
        assert!(h.verify("a-secret-of-sufficient-length"));
    }

    #[test]
    fn grant_scopes_must_belong_to_the_api() {
        let e =
            problems(&base().replace("scopes = [\"read:orders\"]", "scopes = [\"delete:orders\"]"));
        assert!(
            e.contains("grants[0].scopes: \"delete:orders\" is not a scope"),
            "{e}"
        );
    }

    #[test]
    fn public_clients_cannot_have_secrets_or_client_grants() {
        let e = problems(&base().replace("app_type = \"machine\"", "app_type = \"spa\""));
        assert!(
            e.contains("clients[acme-sync]: a spa client is public and cannot keep a secret"),
            "{e}"
        );
        let spa = base()
            + "\n[[clients]]\nid = \"web\"\napp_type = \"spa\"\n[[grants]]\nclient = \"web\"\napi = \"https://orders.example.com\"\n";
        let e = problems(&spa);
        assert!(
            e.contains("grants[1].subject: client \"web\" is a public spa application"),
            "{e}"
        );
    }

    #[test]
    fn a_client_may_authenticate_with_its_public_keys() {
        use crate::token::jwk::testing::ClientKeyPair;
        let key = ClientKeyPair::new(Algorithm::ES256, "k1");
        let inline: Vec<String> = key
            .jwk()
            .as_object()
            .expect("object")
            .iter()
            .map(|(k, v)| format!("{k} = {v}"))
            .collect();
        let signer = |auth: &str| {
            base() + &format!("\n[[clients]]\nid = \"signer\"\napp_type = \"machine\"\n{auth}\n")
        };
        let c = parse(&signer(&format!(
            "jwks = {{ keys = [{{ {} }}] }}",
            inline.join(", ")
        )))
        .expect("valid");
        let keys = c.clients["signer"].keys.as_ref().expect("keys");
        assert_eq!(keys.algorithms(), ["ES256"]);
        assert!(c.clients["signer"].secret.is_none());

        let dir = tempfile::tempdir().expect("tempdir");
        let file = dir.path().join("signer.jwks.json");
        std::fs::write(&file, key.jwks().to_string()).expect("write");
        let c = parse(&signer(&format!("jwks_file = {file:?}"))).expect("valid");
        assert!(c.clients["signer"].keys.is_some());

        let mut private = key.jwk();
        private["d"] = "AAAA".into();
        std::fs::write(&file, serde_json::json!({ "keys": [private] }).to_string()).expect("write");
        let e = problems(&signer(&format!("jwks_file = {file:?}")));
        assert!(
            e.contains(&format!(
                "clients[signer].jwks_file: {}: keys[0].d: is private key material",
                file.display()
            )),
            "{e}"
        );
        std::fs::write(&file, "{").expect("write");
        assert!(problems(&signer(&format!("jwks_file = {file:?}"))).contains("is not JSON"));
        let e = problems(&signer("jwks_file = \"missing.json\""));
        assert!(
            e.contains("clients[signer].jwks_file: /etc/tessera/missing.json: cannot read it"),
            "{e}"
        );
        let e = problems(&signer("jwks = { keys = [{ kty = \"oct\" }] }"));
        assert!(e.contains("clients[signer].jwks: keys[0].kty:"), "{e}");
        let e = problems(&signer(&format!(
            "jwks_file = {file:?}\njwks = {{ keys = [] }}"
        )));
        assert!(
            e.contains("clients[signer]: set jwks or jwks_file, not both"),
            "{e}"
        );
        let e = problems(&signer(&format!(
            "secret_env = \"ACME_SECRET\"\njwks_file = {:?}",
            dir.path().join("none")
        )));
        assert!(e.contains("clients[signer]"), "{e}");
        std::fs::write(&file, key.jwks().to_string()).expect("write");
        let e = problems(&signer(&format!(
            "secret_env = \"ACME_SECRET\"\njwks_file = {file:?}"
        )));
        assert!(
            e.contains("a secret or with its keys (private_key_jwt), not both"),
            "{e}"
        );
        let e = problems(&signer(&format!("jwks_file = {file:?}")).replace(
            "id = \"signer\"\napp_type = \"machine\"",
            "id = \"signer\"\napp_type = \"spa\"",
        ));
        assert!(
            e.contains("a spa client is public: it cannot keep a private key"),
            "{e}"
        );
        let e = problems(&signer(""));
        assert!(e.contains("or its public keys in jwks or jwks_file"), "{e}");
    }

    #[test]
    fn redirect_uris_are_checked() {
        let text = base()
            + "\n[[clients]]\nid = \"web\"\napp_type = \"spa\"\nredirect_uris = [\"http://app.example.com/cb\", \"https://app.example.com/cb#x\", \"http://127.0.0.1/cb\"]\n";
        let e = problems(&text);
        assert!(e.contains("http:// is allowed only for loopback"), "{e}");
        assert!(e.contains("must not have a fragment"), "{e}");
        assert!(!e.contains("127.0.0.1/cb"), "{e}");
        let logout = base()
            + "\n[[clients]]\nid = \"web\"\napp_type = \"spa\"\npost_logout_redirect_uris = [\"http://app.example.com/bye\", \"http://127.0.0.1/bye\"]\n";
        let e = problems(&logout);
        assert!(
            e.contains("clients[web].post_logout_redirect_uris: \"http://app.example.com/bye\": http:// is allowed only for loopback"),
            "{e}"
        );
        assert!(!e.contains("127.0.0.1/bye"), "{e}");
    }

    #[test]
    fn plugin_settings_are_checked() {
        let text = base()
            + "\n[[plugins]]\nname = \"Bad Name\"\npath = \"x.wasm\"\ntimeout_ms = 0\nmemory_mb = 100000\napis = [\"https://nope\"]\nsecrets = { t = { env = \"NOPE\" } }\n";
        let e = problems(&text);
        for needle in [
            "name",
            "timeout_ms",
            "memory_mb",
            "no API has identifier \"https://nope\"",
            "NOPE is not set",
        ] {
            assert!(e.contains(needle), "{needle} missing in {e}");
        }
    }

    #[test]
    fn plugin_config_values_become_strings() {
        let text = base()
            + "\n[[plugins]]\nname = \"p\"\npath = \"p.wasm\"\nconfig = { ns = \"https://x/\", keys = [\"a\", \"b\"], n = 3 }\nsecrets = { s = { env = \"ACME_SECRET\" } }\n";
        let c = parse(&text).expect("valid");
        let p = &c.plugins[0];
        assert_eq!(p.config["ns"], "https://x/");
        assert_eq!(p.config["keys"], "[\"a\",\"b\"]");
        assert_eq!(p.config["n"], "3");
        assert_eq!(p.path, Path::new("/etc/tessera/p.wasm"));
        assert!(!format!("{:?}", p.secrets).contains("sufficient"));
    }

    #[test]
    fn insecure_issuer_is_refused() {
        let e = problems(&base().replace("http://127.0.0.1:8080", "http://auth.example.com"));
        assert!(e.contains("server.issuer"), "{e}");
    }

    #[test]
    fn scope_and_client_id_syntax() {
        assert!(is_scope_token("read:orders"));
        assert!(!is_scope_token("a b"));
        assert!(!is_scope_token("a\"b"));
        assert!(!is_scope_token(""));
        assert!(is_client_id("acme-sync.v2"));
        assert!(!is_client_id("a:b"));
        assert!(!is_client_id("a\u{202e}b"));
    }
}
