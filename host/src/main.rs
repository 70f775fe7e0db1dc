//! The `tessera` command line: parsing and tracing setup; the work lives in the
//! library.

use std::io::IsTerminal as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context as _;
use clap::{Parser, Subcommand};
use tessera::config::{AuditSink, Config, LogFormat, Stage};
use tessera::plugin::Runtime;
use tessera::token::{Clock, KeyRing, SystemClock};
use tessera::{Issuer, SnapshotError};

#[derive(Parser)]
#[command(
    name = "tessera",
    version,
    about = "OAuth 2.0 / OpenID Connect token issuer programmed with WebAssembly plugins"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the issuer.
    Serve {
        /// The configuration file.
        #[arg(long, default_value = "tessera.toml")]
        config: PathBuf,
    },
    /// Validate the configuration and every plugin, then exit.
    Check {
        /// The configuration file.
        #[arg(long, default_value = "tessera.toml")]
        config: PathBuf,
    },
    /// Client secrets.
    #[command(subcommand)]
    Secret(SecretCommand),
    /// Signing keys.
    #[command(subcommand)]
    Keys(KeysCommand),
    /// Local users, who sign in through the authorization-code flow.
    #[command(subcommand)]
    Users(UsersCommand),
    /// The database: its schema.
    #[command(subcommand)]
    Store(StoreCommand),
    /// Write, build, test and inspect plugins.
    #[command(subcommand)]
    Plugin(PluginCommand),
    /// Print a running replica's decision traces: the policy, each plugin
    /// (hash, time, changes, logs) and the token, for each token response.
    /// Needs an admin token with the tessera:traces:read scope, in
    /// TESSERA_ADMIN_TOKEN, or an admin client (--admin-client, its secret
    /// in TESSERA_ADMIN_SECRET) to get one.
    Trace {
        /// The configuration file; the replica is reached at its
        /// server.listen (unless --url is given).
        #[arg(long, default_value = "tessera.toml")]
        config: PathBuf,
        /// The replica, e.g. http://127.0.0.1:8080.
        #[arg(long)]
        url: Option<String>,
        /// One trace, by its token's jti or its request's X-Request-Id.
        id: Option<String>,
        /// Only this client's.
        #[arg(long)]
        client: Option<String>,
        /// Only those for this API (audience).
        #[arg(long)]
        api: Option<String>,
        /// At most this many of the recent ones.
        #[arg(long, default_value_t = 20)]
        limit: usize,
        /// Keep printing new traces as they are recorded.
        #[arg(long, short)]
        follow: bool,
        /// Print the JSON the endpoint sends, one trace a line.
        #[arg(long)]
        json: bool,
        /// Get the admin token by client credentials for this client (its
        /// secret in TESSERA_ADMIN_SECRET).
        #[arg(long, value_name = "CLIENT_ID")]
        admin_client: Option<String>,
    },
}

#[derive(Subcommand)]
enum PluginCommand {
    /// Create a plugin folder that builds and passes its own test out of the
    /// box, with the SDK for its language.
    New {
        /// The plugin's name: lowercase letters, digits and dashes.
        name: String,
        /// rust, js or python.
        #[arg(long, value_parser = ["rust", "js", "javascript", "python", "py"])]
        lang: String,
        /// Where to create the folder NAME.
        #[arg(long, default_value = ".")]
        dir: PathBuf,
    },
    /// Build a plugin folder into a component with cargo, componentize-qjs
    /// or componentize-py (installing the npm or pip package when missing).
    Build {
        /// The plugin folder.
        #[arg(default_value = ".")]
        dir: PathBuf,
        /// The component to write (default DIR/<folder name>.wasm).
        #[arg(long, value_name = "FILE.wasm", conflicts_with = "config")]
        out: Option<PathBuf>,
        /// Write the component where this configuration's [[plugins]] entry
        /// points (its `path`), so a server running on it hot-reloads it.
        #[arg(long, value_name = "tessera.toml")]
        config: Option<PathBuf>,
        /// With --config: the [[plugins]] entry's name (default: the folder's
        /// name).
        #[arg(long, value_name = "NAME", requires = "config")]
        plugin: Option<String>,
        /// Keep running: rebuild after every save of the plugin's sources.
        #[arg(long)]
        watch: bool,
    },
    /// Run one stage of a component offline, in the real runtime, and print
    /// the decision, claims, scope changes, logs and timing as JSON. Exits 0
    /// when the plugin allowed or denied, 1 when it failed.
    Test {
        /// The component (.wasm).
        file: PathBuf,
        /// The stage to run.
        #[arg(long, value_parser = ["credentials-exchange", "authorize"])]
        stage: String,
        /// The event as JSON; every field is optional (its fields: docs/reference.md,
        /// "tessera plugin test"). Without it, every field takes its default.
        #[arg(long, value_name = "EVENT.json")]
        event: Option<PathBuf>,
        /// Wall-clock budget of the call.
        #[arg(long, default_value_t = 1000)]
        timeout_ms: u64,
        /// Memory cap of the call.
        #[arg(long, default_value_t = 64)]
        memory_mb: u32,
        /// Also time this many calls on fresh instances and on a warm one.
        #[arg(long, default_value_t = 0)]
        repeat: u32,
        /// Compiled components are cached here.
        #[arg(long, value_name = "DIR")]
        cache_dir: Option<PathBuf>,
    },
    /// Run the events recorded in decision traces (`tessera trace --json`,
    /// or a saved GET /admin/traces answer) against a new build of a
    /// plugin, and print per event what would change against what the
    /// recorded run did: decision, claims, scopes. Exits 1 when a decision
    /// would flip (a token issued where none was, or the reverse).
    Replay {
        /// The new build (.wasm).
        file: PathBuf,
        /// The recorded traces.
        #[arg(long, value_name = "FILE")]
        traces: PathBuf,
        /// The plugin whose recorded runs to compare with (needed when the
        /// traces ran several).
        #[arg(long, value_name = "NAME")]
        plugin: Option<String>,
        /// Take the plugin's config, secrets, deadline and memory cap from
        /// its [[plugins]] entry in this configuration.
        #[arg(long, value_name = "tessera.toml")]
        config: Option<PathBuf>,
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
        /// Wall-clock budget of each call (without --config).
        #[arg(long, default_value_t = 1000)]
        timeout_ms: u64,
        /// Memory cap of each call (without --config).
        #[arg(long, default_value_t = 64)]
        memory_mb: u32,
        /// Compiled components are cached here.
        #[arg(long, value_name = "DIR")]
        cache_dir: Option<PathBuf>,
    },
    /// Make a plugin's candidate build (its shadow_path) the live one: the
    /// configuration file is edited so the entry's path is the candidate's
    /// and shadow_path goes, and running servers reload it. The candidate is
    /// loaded first, signature included: nothing changes if it would be
    /// refused.
    Promote {
        /// The [[plugins]] entry's name.
        name: String,
        /// The configuration file.
        #[arg(long, default_value = "tessera.toml")]
        config: PathBuf,
    },
    /// Make an Ed25519 key for signing plugins (a PKCS#8 PEM file, readable
    /// by its owner only). Prints its public key, for the `signers` of a
    /// [[plugins]] entry.
    Keygen {
        /// The key file to create (never overwritten).
        #[arg(long, value_name = "KEY")]
        out: PathBuf,
    },
    /// Sign a component: writes FILE.wasm.sig beside it, the detached
    /// Ed25519 signature a [[plugins]] entry that lists `signers` needs to
    /// load the file.
    Sign {
        /// The component (.wasm).
        file: PathBuf,
        /// The signing key (`tessera plugin keygen`, or `openssl genpkey
        /// -algorithm ed25519`).
        #[arg(long, value_name = "KEY")]
        key: PathBuf,
    },
    /// Show which stages and WIT version a component implements, its imports
    /// and exports, size, hash and the tools that made it.
    Inspect {
        /// The component (.wasm).
        file: PathBuf,
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
        /// Compiled components are cached here.
        #[arg(long, value_name = "DIR")]
        cache_dir: Option<PathBuf>,
    },
}

#[derive(Subcommand)]
enum SecretCommand {
    /// Print a fresh client secret and the hash to put in the configuration.
    New,
}

#[derive(Subcommand)]
enum KeysCommand {
    /// Add a signing key: every running tessera publishes it within seconds
    /// and signs with it after [signing] pre_publication_delay_secs; the
    /// old key stays published for the tokens it signed.
    Rotate {
        /// The configuration file.
        #[arg(long, default_value = "tessera.toml")]
        config: PathBuf,
    },
    /// List the signing keys: kid, algorithm, state (next, active, retiring,
    /// retired) and dates.
    List {
        /// The configuration file.
        #[arg(long, default_value = "tessera.toml")]
        config: PathBuf,
    },
    /// Stop publishing a superseded key once the last token it may have
    /// signed has expired.
    Retire {
        /// The key's kid (from `tessera keys list`).
        kid: String,
        /// The configuration file.
        #[arg(long, default_value = "tessera.toml")]
        config: PathBuf,
    },
    /// Print a new random key-encryption key (32 bytes, base64) for
    /// [signing] kek_env or kek_file.
    NewKek,
    /// Seal the keys of a key folder into the store (configured with a
    /// key-encryption key), keeping their dates: moving from a key folder to
    /// the store without invalidating issued tokens.
    Import {
        /// The key folder, e.g. data/keys.
        dir: PathBuf,
        /// The configuration file.
        #[arg(long, default_value = "tessera.toml")]
        config: PathBuf,
    },
}

#[derive(Subcommand)]
enum StoreCommand {
    /// Bring the database's schema up to date and print its version. `serve`
    /// does the same at start (under a lock, so replicas take turns); this
    /// runs it on demand, e.g. before a rolling upgrade.
    Migrate {
        /// The configuration file (its [store] url, or TESSERA_STORE_URL).
        #[arg(long, default_value = "tessera.toml")]
        config: PathBuf,
    },
    /// Copy everything in one store into another (moving up from SQLite to
    /// PostgreSQL): users, sessions, pending requests, codes, refresh-token
    /// families and tokens, signing keys. Stop the issuers first. The target
    /// must be empty unless --replace is given.
    Copy {
        /// The store to read, e.g. sqlite://data/tessera.db.
        #[arg(long, value_name = "URL")]
        from: String,
        /// The store to write, e.g. postgres://tessera@db:5432/tessera.
        #[arg(long, value_name = "URL")]
        to: String,
        /// Delete whatever the target holds first (in the same transaction).
        #[arg(long)]
        replace: bool,
    },
}

#[derive(Subcommand)]
enum UsersCommand {
    /// Add a user and print their id. The password is the first line of
    /// standard input, or is prompted for (twice, without echo) on a terminal;
    /// it is never taken from the command line.
    Add {
        /// Email address (trimmed and lowercased; unique).
        #[arg(long)]
        email: String,
        /// Display name.
        #[arg(long)]
        name: Option<String>,
        /// Mark the email address as verified.
        #[arg(long)]
        email_verified: bool,
        /// About the user, set by the system: a JSON object, e.g. '{"roles":["admin"]}'.
        #[arg(long, value_name = "JSON")]
        app_metadata: Option<String>,
        /// Set by the user: a JSON object.
        #[arg(long, value_name = "JSON")]
        user_metadata: Option<String>,
        /// The configuration file (its [store] url is the database).
        #[arg(long, default_value = "tessera.toml")]
        config: PathBuf,
    },
    /// List users: id, email, verified, name, creation time.
    List {
        /// The configuration file (its [store] url is the database).
        #[arg(long, default_value = "tessera.toml")]
        config: PathBuf,
    },
    /// Remove a user, end their sessions and revoke their refresh tokens.
    Remove {
        /// The user's id (u_…) or email address.
        #[arg(value_name = "ID_OR_EMAIL")]
        user: String,
        /// The configuration file (its [store] url is the database).
        #[arg(long, default_value = "tessera.toml")]
        config: PathBuf,
    },
    /// List the consents a user gave third-party applications
    /// (`first_party = false`), or withdraw one application's.
    Consents {
        /// The user's id (u_…) or email address.
        #[arg(value_name = "ID_OR_EMAIL")]
        user: String,
        /// Withdraw everything the user allowed this client, and revoke its
        /// refresh tokens for them: it must ask again.
        #[arg(long, value_name = "CLIENT_ID")]
        withdraw: Option<String>,
        /// The configuration file (its [store] url is the database).
        #[arg(long, default_value = "tessera.toml")]
        config: PathBuf,
    },
}

/// mimalloc instead of the system allocator: a token's path allocates and
/// frees a few hundred small objects (request, claims, the plugin's event and
/// store), and glibc's malloc/free took about a tenth of the CPU per token
/// (bench/README.md).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    let cli = Cli::parse();
    if matches!(
        cli.command,
        Command::Plugin(
            PluginCommand::Test { .. }
                | PluginCommand::Inspect { .. }
                | PluginCommand::Replay { .. }
        )
    ) {
        stop_quietly_when_the_reader_goes();
    }
    // `plugin test` reports a plugin's failure in its JSON; the pipeline's
    // "plugin failed" warning, meant for a server's log, would say it twice.
    let default_filter = match &cli.command {
        Command::Plugin(PluginCommand::Test { .. } | PluginCommand::Replay { .. }) => {
            "info,tessera::plugin::pipeline=error"
        }
        _ => "info",
    };
    let format = match std::env::var("TESSERA_LOG_FORMAT") {
        Err(_) => None,
        Ok(name) => match LogFormat::parse(&name) {
            Some(f) => Some(f),
            None => {
                eprintln!(
                    "error: TESSERA_LOG_FORMAT: {name:?} is not a log format; use text or json"
                );
                return ExitCode::FAILURE;
            }
        },
    };
    // `serve` starts logging once it has read `[log]`; the others log as
    // text unless told otherwise.
    if !matches!(cli.command, Command::Serve { .. })
        && let Err(e) = init_logging(
            format.unwrap_or_default(),
            default_filter,
            &AuditSink::Stderr,
        )
    {
        eprintln!("error: {e:#}");
        return ExitCode::FAILURE;
    }
    let result = match cli.command {
        Command::Serve { config } => serve(&config, format),
        Command::Check { config } => check(&config),
        Command::Trace {
            config,
            url,
            id,
            client,
            api,
            limit,
            follow,
            json,
            admin_client,
        } => trace(
            &config,
            tessera::trace::cli::Query {
                base: url.unwrap_or_default(),
                client,
                api,
                limit,
                id,
                follow,
                json,
            },
            admin_client,
        ),
        Command::Secret(SecretCommand::New) => secret_new(),
        Command::Keys(command) => keys(command),
        Command::Users(command) => users(command),
        Command::Store(StoreCommand::Migrate { config }) => store_migrate(&config),
        Command::Store(StoreCommand::Copy { from, to, replace }) => store_copy(&from, &to, replace),
        Command::Plugin(command) => plugin(command),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn plugin(command: PluginCommand) -> anyhow::Result<()> {
    use tessera::devkit;
    match command {
        PluginCommand::New { name, lang, dir } => {
            let lang =
                devkit::scaffold::Lang::parse(&lang).context("--lang: use rust, js or python")?;
            let created = devkit::scaffold::new_plugin(&dir, &name, lang)?;
            println!(
                "Created the {lang} plugin {name:?} in {}",
                created.display()
            );
            println!("Next:");
            println!("  cd {}", created.display());
            println!("  {}", devkit::scaffold::unit_test_command(lang));
            println!("  tessera plugin build .");
            println!(
                "  tessera plugin test {name}.wasm --stage credentials-exchange --event event.json"
            );
            Ok(())
        }
        PluginCommand::Build {
            dir,
            out,
            config,
            plugin,
            watch,
        } => {
            let out = match &config {
                Some(config) => Some(plugin_path_in(config, &dir, plugin.as_deref())?),
                None => out,
            };
            let report = |built: devkit::build::Built| {
                eprintln!(
                    "==> built {} ({} bytes, {:.1} s)",
                    built.out.display(),
                    built.size,
                    built.seconds
                );
                println!("{}", built.out.display());
            };
            if watch {
                devkit::watch::watch(&dir, out.as_deref(), &mut |result| match result {
                    Ok(built) => report(built),
                    Err(e) => eprintln!(
                        "error: {e:#}\n==> the last good component stays; waiting for the next save"
                    ),
                })
            } else {
                report(devkit::build::build(&dir, out.as_deref())?);
                Ok(())
            }
        }
        PluginCommand::Test {
            file,
            stage,
            event,
            timeout_ms,
            memory_mb,
            repeat,
            cache_dir,
        } => {
            let stage = match stage.as_str() {
                "authorize" => Stage::Authorize,
                _ => Stage::CredentialsExchange,
            };
            let event = match &event {
                None => devkit::run::EventFile::default(),
                Some(path) => {
                    let text = std::fs::read_to_string(path).with_context(|| {
                        format!("{}: cannot read the event file", path.display())
                    })?;
                    serde_json::from_str(&text).map_err(|e| {
                        anyhow::anyhow!(
                            "{}: line {}, column {}: {e}",
                            path.display(),
                            e.line(),
                            e.column()
                        )
                    })?
                }
            };
            let options = devkit::run::TestOptions {
                file,
                stage,
                event,
                cache_dir: cache_dir.unwrap_or_else(devkit::default_cache_dir),
                timeout: std::time::Duration::from_millis(timeout_ms),
                memory_bytes: (memory_mb as usize) << 20,
                repeat,
            };
            let report = devkit::run::run(&options)?;
            println!("{}", serde_json::to_string_pretty(&report)?);
            if report.decision == "fail" {
                std::process::exit(1);
            }
            Ok(())
        }
        PluginCommand::Replay {
            file,
            traces,
            plugin,
            config,
            json,
            timeout_ms,
            memory_mb,
            cache_dir,
        } => {
            let options = devkit::replay::ReplayOptions {
                file,
                traces,
                plugin,
                config: config.as_deref().map(load_config).transpose()?,
                cache_dir: cache_dir.unwrap_or_else(devkit::default_cache_dir),
                timeout: std::time::Duration::from_millis(timeout_ms),
                memory_bytes: (memory_mb as usize) << 20,
            };
            let replay = devkit::replay::replay(&options)?;
            if json {
                println!("{}", serde_json::to_string_pretty(&replay)?);
            } else {
                print!("{}", replay.text());
            }
            if replay.flips() > 0 {
                std::process::exit(1);
            }
            Ok(())
        }
        PluginCommand::Promote { name, config } => {
            let promoted = devkit::promote::promote(&config, &name)?;
            println!(
                "plugins[{name}].path: {} -> {} (sha256 {}); shadow_path removed from {}",
                promoted.was,
                promoted.now,
                promoted.sha256,
                config.display()
            );
            Ok(())
        }
        PluginCommand::Keygen { out } => {
            let public = devkit::sign::keygen(&out)?;
            eprintln!(
                "==> wrote the signing key {} (keep it secret); its public key, for signers = [\"…\"]:",
                out.display()
            );
            println!("{public}");
            Ok(())
        }
        PluginCommand::Sign { file, key } => {
            let signed = devkit::sign::sign(&file, &key)?;
            eprintln!(
                "==> signed {} (sha256 {}) as {}",
                file.display(),
                signed.sha256,
                signed.signer
            );
            println!("{}", signed.signature.display());
            Ok(())
        }
        PluginCommand::Inspect {
            file,
            json,
            cache_dir,
        } => {
            let cache_dir = cache_dir.unwrap_or_else(devkit::default_cache_dir);
            let found = devkit::inspect::inspect(&file, &cache_dir)?;
            if json {
                println!("{}", serde_json::to_string_pretty(&found)?);
            } else {
                print!("{}", found.text());
            }
            Ok(())
        }
    }
}

/// Where the configuration at `config` loads the plugin `name` (default:
/// the folder name of `dir`) from.
fn plugin_path_in(config: &Path, dir: &Path, name: Option<&str>) -> anyhow::Result<PathBuf> {
    let folder = std::path::absolute(dir).unwrap_or_else(|_| dir.to_owned());
    let name = match name {
        Some(n) => n.to_owned(),
        None => folder
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default(),
    };
    let config_file = load_config(config)?;
    match config_file.plugin(&name) {
        Ok(p) => Ok(p.path.clone()),
        Err(missing) => anyhow::bail!(
            "{missing}; add one with name = {name:?} and the path to write, or pass --plugin NAME"
        ),
    }
}

/// A report piped into `head` and the like ends the command when the reader
/// is gone, as it does other Unix tools, instead of a panic on the broken
/// pipe: SIGPIPE is put back to its default, which Rust's runtime ignores.
/// Only for the commands that print a report and talk to no server or
/// database: `serve` must outlive a client that hangs up, and a command
/// whose database connection drops says so in an error.
fn stop_quietly_when_the_reader_goes() {
    #[cfg(unix)]
    #[allow(unsafe_code, reason = "one libc call, made before any thread starts")]
    // SAFETY: `signal` with SIG_DFL installs no handler; the process has
    // one thread yet, so nothing else changes signal dispositions meanwhile.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
}

fn load_config(path: &Path) -> anyhow::Result<Config> {
    Config::load(path).map_err(anyhow::Error::from)
}

/// Logging to standard error, filtered by `TESSERA_LOG` (else
/// `default_filter`), with audit events (`tessera::audit`) where `audit`
/// says ([`tessera::logging`]). The guard, when there is one, flushes the
/// audit file when dropped.
fn init_logging(
    format: LogFormat,
    default_filter: &str,
    audit: &AuditSink,
) -> anyhow::Result<Option<tracing_appender::non_blocking::WorkerGuard>> {
    use tessera::logging::Audit;
    use tracing_subscriber::util::SubscriberInitExt as _;

    let filter = tracing_subscriber::EnvFilter::try_from_env("TESSERA_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default_filter));
    // Colour only for a person at a terminal: a log file or a pipe gets
    // plain text (and NO_COLOR turns it off everywhere).
    let ansi = std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none();
    let (audit, guard) = match audit {
        AuditSink::Stderr => (Audit::Main, None),
        AuditSink::Off => (Audit::Off, None),
        AuditSink::File(path) => {
            let file = open_audit_file(path)
                .with_context(|| format!("log.audit: opening {}", path.display()))?;
            // Lossless: when the queue is full (a stalled disk) the
            // request waits rather than lose an audit event. What queues
            // up while the thread writes goes out in one write.
            let (writer, guard) = tracing_appender::non_blocking::NonBlockingBuilder::default()
                .lossy(false)
                .thread_name("tessera-audit")
                .finish(std::io::BufWriter::new(file));
            (Audit::Writer(writer), Some(guard))
        }
    };
    tessera::logging::subscriber(format, filter, ansi, std::io::stderr, audit).init();
    Ok(guard)
}

/// The audit file, appended to, readable by its owner alone when new.
fn open_audit_file(path: &Path) -> std::io::Result<std::fs::File> {
    let mut options = std::fs::OpenOptions::new();
    options.create(true).append(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    options.open(path)
}

fn serve(path: &Path, format: Option<LogFormat>) -> anyhow::Result<()> {
    let config = load_config(path)?;
    let _audit = init_logging(
        format.unwrap_or(config.log.format),
        "info",
        &config.log.audit,
    )?;
    let listen = config.server.listen;
    let metrics_listen = config.metrics.listen;
    let issuer_url = config.server.issuer.clone();
    let store_config = config.store.clone();
    let runtime = Runtime::with_fuel(config.runtime.fuel)
        .map_err(|e| anyhow::anyhow!("starting the plugin runtime: {e}"))?;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    rt.block_on(async move {
        let started = std::time::Instant::now();
        let store = open_store(&store_config).await?;
        let issuer = Issuer::new(runtime, config, Arc::new(SystemClock), store).await?;
        let snapshot = issuer.snapshot();
        for p in &snapshot.plugins {
            tracing::info!(
                plugin = %p.config.name,
                sha256 = %p.sha256,
                signed_by = p.signed_by.as_ref().map(tracing::field::display),
                stages = %p.stages.names().join(","),
                cached = p.from_cache,
                load_ms = p.load_time.as_millis() as u64,
                "plugin loaded"
            );
        }
        let keys = issuer.keys();
        tracing::info!(
            kid = %keys.active().kid,
            alg = keys.active().algorithm.as_str(),
            published = keys.keys().len(),
            keys_in = %issuer.keyring().describe(),
            plugins = snapshot.plugins.len(),
            startup_ms = started.elapsed().as_millis() as u64,
            "snapshot ready"
        );
        drop((snapshot, keys));
        let issuer = Arc::new(issuer);
        tokio::spawn(purge_expired(issuer.clone()));
        tokio::spawn(tessera::watch_keys(issuer.clone()));
        let _watcher = tessera::reload::watch(issuer.clone());
        #[cfg(unix)]
        tokio::spawn(tessera::reload::on_sighup(issuer.clone()));
        let listener =
            tessera::http::bind(listen).with_context(|| format!("listening on {listen}"))?;
        let addr = listener.local_addr()?;
        let (stop, stopping) = tokio::sync::watch::channel(false);
        let stopped = move || {
            let mut stopping = stopping.clone();
            async move {
                let _ = stopping.wait_for(|s| *s).await;
            }
        };
        let metrics_server = match metrics_listen {
            None => None,
            Some(at) => {
                let listener = tessera::http::bind(at)
                    .with_context(|| format!("listening on {at} (metrics.listen)"))?;
                let at = listener.local_addr()?;
                println!("Tessera metrics on http://{at}/metrics");
                let limits = issuer.snapshot().config.server.limits;
                let app = tessera::http::metrics_router(issuer.clone());
                Some(tokio::spawn(tessera::http::serve_router(
                    listener,
                    app,
                    limits,
                    stopped(),
                )))
            }
        };
        let following = issuer.clone();
        tokio::spawn(async move {
            shutdown_signal().await;
            following.traces.stop_following();
            let _ = stop.send(true);
        });
        // One line on stdout, for people and for tests that start the binary.
        println!("Tessera listening on http://{addr} (issuer {issuer_url})");
        tessera::http::serve(listener, issuer, stopped()).await;
        if let Some(server) = metrics_server {
            let _ = server.await;
        }
        tracing::info!("stopped");
        Ok(())
    })
}

/// Deletes expired codes, sessions, pending sign-ins and refresh tokens once a minute.
async fn purge_expired(issuer: Arc<Issuer>) {
    let mut every = tokio::time::interval(std::time::Duration::from_secs(60));
    loop {
        every.tick().await;
        if let Err(e) = issuer.store.purge_expired(issuer.clock.now()).await {
            tracing::warn!(error = %e, "purging expired store rows failed");
        }
    }
}

async fn shutdown_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {}
                    _ = term.recv() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
    tracing::info!("shutting down; finishing in-flight requests");
}

fn trace(
    config: &Path,
    mut query: tessera::trace::cli::Query,
    admin_client: Option<String>,
) -> anyhow::Result<()> {
    use tessera::trace::cli::Credentials;
    if query.base.is_empty() {
        let mut listen = load_config(config)?.server.listen;
        if listen.ip().is_unspecified() {
            listen.set_ip(std::net::Ipv4Addr::LOCALHOST.into());
        }
        query.base = format!("http://{listen}");
    }
    let credentials = match (admin_client, std::env::var("TESSERA_ADMIN_TOKEN")) {
        (Some(id), _) => Credentials::Client {
            secret: std::env::var("TESSERA_ADMIN_SECRET").map_err(|_| {
                anyhow::anyhow!(
                    "--admin-client {id}: put the client's secret in TESSERA_ADMIN_SECRET"
                )
            })?,
            id,
        },
        (None, Ok(token)) => Credentials::Token(token),
        (None, Err(_)) => anyhow::bail!(
            "no admin token: set TESSERA_ADMIN_TOKEN to an access token for audience {} with scope {}, \
             or name an admin client with --admin-client (its secret in TESSERA_ADMIN_SECRET)",
            tessera::config::ADMIN_AUDIENCE,
            tessera::config::SCOPE_TRACES_READ
        ),
    };
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    let mut out = std::io::stdout().lock();
    rt.block_on(tessera::trace::cli::run(&query, credentials, &mut out))?;
    Ok(())
}

fn check(path: &Path) -> anyhow::Result<()> {
    let config = load_config(path)?;
    for warning in &config.warnings {
        eprintln!("warning: {}: {warning}", path.display());
    }
    let runtime = Runtime::with_fuel(config.runtime.fuel)
        .map_err(|e| anyhow::anyhow!("starting the plugin runtime: {e}"))?;
    let plugins =
        tessera::plugin::registry::load_all(&runtime, &config, &[]).map_err(|errors| {
            SnapshotError::Plugins {
                file: path.to_owned(),
                errors,
            }
        })?;
    println!(
        "{}: OK — {} APIs, {} clients, {} plugins",
        path.display(),
        config.apis.len(),
        config.clients.len(),
        plugins.len()
    );
    for p in &plugins {
        println!(
            "  plugin {:<24} sha256:{}  stages: {}  ({} KiB{})",
            p.config.name,
            &p.sha256[..16],
            p.stages.names().join(", "),
            p.size / 1024,
            if p.from_cache {
                ", compiled from cache"
            } else {
                ""
            }
        );
        if let Some(signer) = &p.signed_by {
            println!("    signed by {signer}");
        }
        if let Some(candidate) = &p.shadow {
            println!(
                "    shadow {} sha256:{}  on {}% of calls",
                candidate.plugin.config.written_path.display(),
                &candidate.plugin.sha256[..16],
                candidate.sample() * 100.0
            );
        }
    }
    Ok(())
}

fn secret_new() -> anyhow::Result<()> {
    let secret = tessera::secret::generate()
        .map_err(|_| anyhow::anyhow!("the system random number generator failed"))?;
    let hash = tessera::secret::SecretHash::of(&secret);
    println!("secret:      {secret}");
    println!("secret_hash: \"{hash}\"");
    eprintln!("Give the secret to the client's operator; put only secret_hash in tessera.toml.");
    Ok(())
}

fn keys(command: KeysCommand) -> anyhow::Result<()> {
    use tessera::token::keyring;
    let config_path = match &command {
        KeysCommand::NewKek => {
            let kek = tessera::token::kek::Kek::generate()
                .map_err(|_| anyhow::anyhow!("the system random number generator failed"))?;
            println!("{}", *kek);
            eprintln!(
                "Keep it like a password (a secret manager, or a file only tessera can read) and give it to \
                 every replica through [signing] kek_env or kek_file. Losing it loses the signing keys."
            );
            return Ok(());
        }
        KeysCommand::Rotate { config }
        | KeysCommand::List { config }
        | KeysCommand::Retire { config, .. }
        | KeysCommand::Import { config, .. } => config.clone(),
    };
    let config = load_config(&config_path)?;
    let signing = &config.signing;
    let now = SystemClock.now();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    rt.block_on(async {
        let (ring, store) = match &signing.kek {
            Some(kek) => {
                let store = open_store(&config.store).await?;
                (KeyRing::in_store(store.clone(), kek.clone()), Some(store))
            }
            None => (KeyRing::in_dir(signing.key_dir.clone()), None),
        };
        let place = ring.describe();
        let result = match command {
            KeysCommand::NewKek => Ok(()),
            KeysCommand::Rotate { .. } => ring.rotate(signing, now).await.map(|keys| {
                for key in &keys {
                    tessera::audit::signing_key_command("rotate", &key.kid, key.algorithm.as_str());
                    println!(
                        "new {} signing key {} in {place}",
                        key.algorithm.as_str(),
                        key.kid
                    );
                }
                let (it, them) = if keys.len() == 1 {
                    ("it", "it")
                } else {
                    ("them", "each")
                };
                println!(
                    "Every running tessera publishes {it} within {} s and signs with {them} from {} UTC \
                     (pre_publication_delay_secs = {}); older keys stay published for the tokens they signed.",
                    keyring::POLL_INTERVAL.as_secs(),
                    tessera::tabular::utc(keys.first().map_or(now, |k| k.life.activates_at)),
                    signing.pre_publication_delay.as_secs()
                );
            }),
            KeysCommand::List { .. } => ring.list(signing, now).await.map(|keys| {
                if keys.is_empty() {
                    eprintln!("no signing keys in {place} yet; `tessera serve` makes the first");
                } else {
                    print!("{}", keyring::table(&keys));
                }
            }),
            KeysCommand::Retire { kid, .. } => {
                let longest = tessera::grants::longest_token_lifetime(&config);
                ring.retire(signing, &kid, now, longest).await.map(|key| {
                    tessera::audit::signing_key_command("retire", &key.kid, key.algorithm.as_str());
                    let at = key.life.retire_at.unwrap_or(now);
                    if at <= now {
                        println!("{} is retired: no longer published", key.kid);
                    } else {
                        println!(
                            "{} stays published until {} UTC, when the last token it may have signed \
                             has expired, and is retired then",
                            key.kid,
                            tessera::tabular::utc(at)
                        );
                    }
                })
            }
            KeysCommand::Import { dir, .. } => ring.import_dir(&dir).await.map(|kids| {
                println!(
                    "imported {} key{} from {} into {place}",
                    kids.len(),
                    if kids.len() == 1 { "" } else { "s" },
                    dir.display()
                );
                for kid in kids {
                    println!("  {kid}");
                }
            }),
        };
        if let Some(store) = store {
            store.close().await;
        }
        result.with_context(|| format!("signing keys in {place}"))
    })
}

/// Opens the configured store, naming it (without its password) when that
/// fails.
async fn open_store(
    config: &tessera::config::StoreConfig,
) -> anyhow::Result<tessera::store::Store> {
    tessera::store::Store::open_with(&config.url, &config.pool)
        .await
        .with_context(|| {
            format!(
                "opening the store {}",
                tessera::store::redacted_url(&config.url)
            )
        })
}

fn store_migrate(path: &Path) -> anyhow::Result<()> {
    let config = load_config(path)?;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    let store = rt.block_on(open_store(&config.store))?;
    rt.block_on(store.close());
    println!(
        "{} store {} is at schema version {} (the newest this tessera knows: {})",
        store.backend_name(),
        tessera::store::redacted_url(&config.store.url),
        store.schema_version(),
        tessera::store::Store::latest_schema_version()
    );
    Ok(())
}

fn store_copy(from: &str, to: &str, replace: bool) -> anyhow::Result<()> {
    use tessera::store::{PoolSettings, Store, redacted_url};
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    rt.block_on(async {
        let open = |url: &str, flag: &'static str| {
            let url = url.to_owned();
            async move {
                Store::open_with(&url, &PoolSettings::default())
                    .await
                    .with_context(|| format!("{flag}: opening the store {}", redacted_url(&url)))
            }
        };
        let source = open(from, "--from").await?;
        let target = open(to, "--to").await?;
        let copied = source.copy_to(&target, replace).await;
        source.close().await;
        target.close().await;
        let copied = copied
            .with_context(|| format!("copying {} to {}", redacted_url(from), redacted_url(to)))?;
        println!(
            "copied {copied} from {} to {}",
            redacted_url(from),
            redacted_url(to)
        );
        if copied.of("signing_keys") == 0 {
            eprintln!(
                "The source store holds no signing keys: they were in a key folder. Seal them into \
                 the new store with `tessera keys import DIR --config FILE` (FILE with the new \
                 store and its kek_env or kek_file), so tokens they signed keep verifying."
            );
        }
        Ok(())
    })
}

fn users(command: UsersCommand) -> anyhow::Result<()> {
    use tessera::store::{Store, cli};
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    let open = |config: &Path| -> anyhow::Result<Store> {
        let store = load_config(config)?.store;
        rt.block_on(open_store(&store))
    };
    match command {
        UsersCommand::Add {
            email,
            name,
            email_verified,
            app_metadata,
            user_metadata,
            config,
        } => {
            let new = cli::AddFlags {
                email,
                name,
                email_verified,
                app_metadata,
                user_metadata,
            }
            .into_new_user()?;
            let store = open(&config)?;
            let password = cli::read_new_password()?;
            let user = rt.block_on(cli::add(&store, new, password, SystemClock.now()));
            rt.block_on(store.close());
            println!("{}", user?.id);
        }
        UsersCommand::List { config } => {
            let store = open(&config)?;
            let users = rt.block_on(store.list_users());
            rt.block_on(store.close());
            let users = users?;
            if users.is_empty() {
                eprintln!("no users yet; add one with `tessera users add --email …`");
            } else {
                print!("{}", cli::table(&users));
            }
        }
        UsersCommand::Remove { user, config } => {
            let store = open(&config)?;
            let removed = rt.block_on(cli::remove(&store, &user));
            rt.block_on(store.close());
            removed?;
            eprintln!("removed {user}");
        }
        UsersCommand::Consents {
            user,
            withdraw: Some(client),
            config,
        } => {
            let store = open(&config)?;
            let withdrawn = rt.block_on(cli::withdraw(&store, &user, &client));
            rt.block_on(store.close());
            let withdrawn = withdrawn?;
            eprintln!(
                "withdrew the consent {user} gave {client}; revoked {} refresh-token famil{}",
                withdrawn.refresh_families,
                if withdrawn.refresh_families == 1 {
                    "y"
                } else {
                    "ies"
                }
            );
        }
        UsersCommand::Consents {
            user,
            withdraw: None,
            config,
        } => {
            let store = open(&config)?;
            let consents = rt.block_on(cli::consents(&store, &user));
            rt.block_on(store.close());
            let consents = consents?;
            if consents.is_empty() {
                eprintln!("{user} has given no consents");
            } else {
                print!("{}", cli::consent_table(&consents));
            }
        }
    }
    Ok(())
}
