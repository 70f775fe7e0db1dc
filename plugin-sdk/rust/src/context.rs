//! What a plugin can ask of the host: its configuration, its secrets, and a
//! log. Backed by the host's imports in a component, by plain maps in tests.

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::fmt;

use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::convert;

/// Severity of a log line.
///
/// # Example
///
/// ```
/// use tessera_plugin_sdk::Level;
///
/// assert!(Level::Warn > Level::Info);
/// assert_eq!(Level::Debug.as_str(), "debug");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Level {
    /// Very detailed tracing.
    Trace,
    /// Debugging detail.
    Debug,
    /// Normal operation.
    Info,
    /// Something unexpected that did not stop the plugin.
    Warn,
    /// Something failed.
    Error,
}

impl Level {
    /// The level's lowercase name: `trace`, `debug`, `info`, `warn`, `error`.
    ///
    /// # Example
    ///
    /// ```
    /// use tessera_plugin_sdk::Level;
    ///
    /// assert_eq!(Level::Error.as_str(), "error");
    /// ```
    pub const fn as_str(self) -> &'static str {
        match self {
            Level::Trace => "trace",
            Level::Debug => "debug",
            Level::Info => "info",
            Level::Warn => "warn",
            Level::Error => "error",
        }
    }
}

impl fmt::Display for Level {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A config value that is not what the plugin expects.
///
/// # Example
///
/// ```
/// use tessera_plugin_sdk::Context;
///
/// let ctx = Context::mock().with_config("limit", "ten");
/// let err = ctx.config_as::<u32>("limit").unwrap_err();
/// assert_eq!(err.key(), "limit");
/// assert!(err.to_string().starts_with("config key \"limit\": "));
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    key: String,
    message: String,
}

impl ConfigError {
    /// The config key whose value is wrong.
    ///
    /// # Example
    ///
    /// ```
    /// use tessera_plugin_sdk::Context;
    ///
    /// let ctx = Context::mock().with_config("tags", 3);
    /// assert_eq!(ctx.config_as::<Vec<String>>("tags").unwrap_err().key(), "tags");
    /// ```
    pub fn key(&self) -> &str {
        &self.key
    }
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "config key {:?}: {}", self.key, self.message)
    }
}

impl std::error::Error for ConfigError {}

/// The plugin's view of the host: configuration, secrets and logging.
///
/// In a component, [`export!`](crate::export) hands the plugin a context that
/// calls the host. In tests, build one with [`Context::mock`]: it answers from
/// the values given to it and records log lines for [`Context::logs`].
///
/// # Example
///
/// ```
/// use tessera_plugin_sdk::{Context, Level};
///
/// let ctx = Context::mock()
///     .with_config("namespace", "https://claims.example.com/")
///     .with_secret("crm_token", "s3cret");
///
/// assert_eq!(ctx.config("namespace").as_deref(), Some("https://claims.example.com/"));
/// assert_eq!(ctx.secret("crm_token").as_deref(), Some("s3cret"));
/// ctx.info("looked up the CRM");
/// assert_eq!(ctx.logs(), [(Level::Info, "looked up the CRM".to_owned())]);
/// ```
pub struct Context {
    source: Source,
}

enum Source {
    /// The host's imports.
    Host,
    /// Answers from maps; logs are kept.
    Mock(Mock),
}

#[derive(Default)]
struct Mock {
    config: BTreeMap<String, String>,
    secrets: BTreeMap<String, String>,
    logs: RefCell<Vec<(Level, String)>>,
}

impl Context {
    /// The context of a plugin running in the host.
    pub(crate) fn host() -> Self {
        Context {
            source: Source::Host,
        }
    }

    /// A context for tests, with no config, no secrets and no logs yet.
    ///
    /// It never calls the host, so it works in native `cargo test` runs.
    ///
    /// # Example
    ///
    /// ```
    /// use tessera_plugin_sdk::Context;
    ///
    /// let ctx = Context::mock();
    /// assert_eq!(ctx.config("anything"), None);
    /// assert!(ctx.logs().is_empty());
    /// ```
    pub fn mock() -> Self {
        Context {
            source: Source::Mock(Mock::default()),
        }
    }

    /// Sets a config value of a mock context, as `tessera.toml`'s plugin
    /// `config` table would: a string is passed as is, any other value as
    /// JSON text (that is what the host does). No effect on a host context.
    ///
    /// # Example
    ///
    /// ```
    /// use tessera_plugin_sdk::{Context, json};
    ///
    /// let ctx = Context::mock()
    ///     .with_config("namespace", "https://claims.example.com/")
    ///     .with_config("keys", json!(["partner", "tier"]));
    /// assert_eq!(ctx.config("keys").as_deref(), Some(r#"["partner","tier"]"#));
    /// ```
    pub fn with_config(mut self, key: impl Into<String>, value: impl Into<Value>) -> Self {
        if let Source::Mock(mock) = &mut self.source {
            let text = match value.into() {
                Value::String(text) => text,
                other => other.to_string(),
            };
            mock.config.insert(key.into(), text);
        }
        self
    }

    /// Sets a secret of a mock context. No effect on a host context.
    ///
    /// # Example
    ///
    /// ```
    /// use tessera_plugin_sdk::Context;
    ///
    /// let ctx = Context::mock().with_secret("crm_token", "s3cret");
    /// assert_eq!(ctx.secret("crm_token").as_deref(), Some("s3cret"));
    /// ```
    pub fn with_secret(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        if let Source::Mock(mock) = &mut self.source {
            mock.secrets.insert(name.into(), value.into());
        }
        self
    }

    /// Reads a value of the plugin's `config` table. Strings come back as
    /// they are; other values (numbers, booleans, lists, tables) as JSON text.
    ///
    /// # Example
    ///
    /// ```
    /// use tessera_plugin_sdk::Context;
    ///
    /// let ctx = Context::mock().with_config("limit", 10);
    /// assert_eq!(ctx.config("limit").as_deref(), Some("10"));
    /// assert_eq!(ctx.config("missing"), None);
    /// ```
    pub fn config(&self, key: &str) -> Option<String> {
        match &self.source {
            Source::Host => convert::host_config(key),
            Source::Mock(mock) => mock.config.get(key).cloned(),
        }
    }

    /// Reads a config value as JSON: text that parses as JSON is parsed, any
    /// other text is a JSON string.
    ///
    /// A string value that happens to be valid JSON (`"true"`, `"10"`) comes
    /// back parsed: the host passes strings without quotes.
    ///
    /// # Example
    ///
    /// ```
    /// use tessera_plugin_sdk::{Context, json};
    ///
    /// let ctx = Context::mock()
    ///     .with_config("keys", json!(["partner", "tier"]))
    ///     .with_config("namespace", "https://claims.example.com/");
    /// assert_eq!(ctx.config_value("keys"), Some(json!(["partner", "tier"])));
    /// assert_eq!(ctx.config_value("namespace"), Some(json!("https://claims.example.com/")));
    /// ```
    pub fn config_value(&self, key: &str) -> Option<Value> {
        self.config(key)
            .map(|text| serde_json::from_str(&text).unwrap_or(Value::String(text)))
    }

    /// Reads a config value into any deserializable type, through
    /// [`config_value`](Context::config_value). `Ok(None)` if the key is not
    /// set.
    ///
    /// # Errors
    ///
    /// A [`ConfigError`] naming the key if the value does not fit `T`.
    ///
    /// # Example
    ///
    /// ```
    /// use tessera_plugin_sdk::{Context, json};
    ///
    /// let ctx = Context::mock().with_config("limits", json!({ "rps": 10 }));
    ///
    /// #[derive(serde::Deserialize)]
    /// struct Limits {
    ///     rps: u32,
    /// }
    ///
    /// let limits: Limits = ctx.config_as("limits").unwrap().unwrap();
    /// assert_eq!(limits.rps, 10);
    /// assert!(ctx.config_as::<Limits>("missing").unwrap().is_none());
    /// ```
    pub fn config_as<T: DeserializeOwned>(&self, key: &str) -> Result<Option<T>, ConfigError> {
        self.config_value(key)
            .map(|value| {
                serde_json::from_value(value).map_err(|err| ConfigError {
                    key: key.to_owned(),
                    message: err.to_string(),
                })
            })
            .transpose()
    }

    /// Reads a secret declared in the plugin's `secrets` table.
    ///
    /// Secrets never appear in logs, traces or tokens unless the plugin puts
    /// them there: don't.
    ///
    /// # Example
    ///
    /// ```
    /// use tessera_plugin_sdk::Context;
    ///
    /// let ctx = Context::mock();
    /// assert_eq!(ctx.secret("crm_token"), None);
    /// ```
    pub fn secret(&self, name: &str) -> Option<String> {
        match &self.source {
            Source::Host => convert::host_secret(name),
            Source::Mock(mock) => mock.secrets.get(name).cloned(),
        }
    }

    /// Writes a line to the request's trace and the issuer's log. The host
    /// truncates messages to 1 KiB and keeps at most 32 lines per call.
    ///
    /// # Example
    ///
    /// ```
    /// use tessera_plugin_sdk::{Context, Level};
    ///
    /// let ctx = Context::mock();
    /// ctx.log(Level::Warn, "partner metadata missing");
    /// assert_eq!(ctx.logs()[0].0, Level::Warn);
    /// ```
    pub fn log(&self, level: Level, message: impl AsRef<str>) {
        let message = message.as_ref();
        match &self.source {
            Source::Host => convert::host_log(level, message),
            Source::Mock(mock) => mock.logs.borrow_mut().push((level, message.to_owned())),
        }
    }

    /// Logs at [`Level::Trace`].
    ///
    /// # Example
    ///
    /// ```
    /// use tessera_plugin_sdk::{Context, Level};
    ///
    /// let ctx = Context::mock();
    /// ctx.trace("entering");
    /// assert_eq!(ctx.logs(), [(Level::Trace, "entering".to_owned())]);
    /// ```
    pub fn trace(&self, message: impl AsRef<str>) {
        self.log(Level::Trace, message);
    }

    /// Logs at [`Level::Debug`].
    ///
    /// # Example
    ///
    /// ```
    /// use tessera_plugin_sdk::{Context, Level};
    ///
    /// let ctx = Context::mock();
    /// ctx.debug(format!("{} claims", 2));
    /// assert_eq!(ctx.logs(), [(Level::Debug, "2 claims".to_owned())]);
    /// ```
    pub fn debug(&self, message: impl AsRef<str>) {
        self.log(Level::Debug, message);
    }

    /// Logs at [`Level::Info`].
    ///
    /// # Example
    ///
    /// ```
    /// use tessera_plugin_sdk::{Context, Level};
    ///
    /// let ctx = Context::mock();
    /// ctx.info("removed write:orders");
    /// assert_eq!(ctx.logs(), [(Level::Info, "removed write:orders".to_owned())]);
    /// ```
    pub fn info(&self, message: impl AsRef<str>) {
        self.log(Level::Info, message);
    }

    /// Logs at [`Level::Warn`].
    ///
    /// # Example
    ///
    /// ```
    /// use tessera_plugin_sdk::{Context, Level};
    ///
    /// let ctx = Context::mock();
    /// ctx.warn("no partner");
    /// assert_eq!(ctx.logs(), [(Level::Warn, "no partner".to_owned())]);
    /// ```
    pub fn warn(&self, message: impl AsRef<str>) {
        self.log(Level::Warn, message);
    }

    /// Logs at [`Level::Error`].
    ///
    /// # Example
    ///
    /// ```
    /// use tessera_plugin_sdk::{Context, Level};
    ///
    /// let ctx = Context::mock();
    /// ctx.error("CRM unreachable");
    /// assert_eq!(ctx.logs(), [(Level::Error, "CRM unreachable".to_owned())]);
    /// ```
    pub fn error(&self, message: impl AsRef<str>) {
        self.log(Level::Error, message);
    }

    /// The lines a mock context logged so far, oldest first. Always empty for
    /// a host context (its lines went to the host).
    ///
    /// # Example
    ///
    /// ```
    /// use tessera_plugin_sdk::{Context, Level};
    ///
    /// let ctx = Context::mock();
    /// ctx.info("one");
    /// ctx.debug("two");
    /// assert_eq!(
    ///     ctx.logs(),
    ///     [(Level::Info, "one".to_owned()), (Level::Debug, "two".to_owned())],
    /// );
    /// ```
    pub fn logs(&self) -> Vec<(Level, String)> {
        match &self.source {
            Source::Host => Vec::new(),
            Source::Mock(mock) => mock.logs.borrow().clone(),
        }
    }
}

impl fmt::Debug for Context {
    /// Shows config values but only the names of secrets.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.source {
            Source::Host => f.debug_struct("Context").field("source", &"host").finish(),
            Source::Mock(mock) => f
                .debug_struct("Context")
                .field("source", &"mock")
                .field("config", &mock.config)
                .field("secrets", &mock.secrets.keys().collect::<Vec<_>>())
                .field("logs", &mock.logs.borrow())
                .finish(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn mock_config_mirrors_the_host_encoding() {
        let ctx = Context::mock()
            .with_config("s", "text")
            .with_config("n", 1.5)
            .with_config("b", true)
            .with_config("l", json!(["a", "b"]))
            .with_config("t", json!({ "k": [1] }));
        assert_eq!(ctx.config("s").as_deref(), Some("text"));
        assert_eq!(ctx.config("n").as_deref(), Some("1.5"));
        assert_eq!(ctx.config("b").as_deref(), Some("true"));
        assert_eq!(ctx.config("l").as_deref(), Some(r#"["a","b"]"#));
        assert_eq!(ctx.config("t").as_deref(), Some(r#"{"k":[1]}"#));
    }

    #[test]
    fn config_value_parses_json_and_falls_back_to_a_string() {
        let ctx = Context::mock()
            .with_config("list", json!(["a"]))
            .with_config("csv", "partner, tier")
            .with_config("looks_like_json", "42");
        assert_eq!(ctx.config_value("list"), Some(json!(["a"])));
        assert_eq!(ctx.config_value("csv"), Some(json!("partner, tier")));
        assert_eq!(ctx.config_value("looks_like_json"), Some(json!(42)));
        assert_eq!(ctx.config_value("missing"), None);
    }

    #[test]
    fn config_as_reads_strings_lists_and_reports_the_key() {
        let ctx = Context::mock()
            .with_config("name", "plain text")
            .with_config("keys", json!(["a", "b"]))
            .with_config("bad", json!({ "not": "a list" }));
        assert_eq!(
            ctx.config_as::<String>("name"),
            Ok(Some("plain text".to_owned()))
        );
        assert_eq!(
            ctx.config_as::<Vec<String>>("keys"),
            Ok(Some(vec!["a".to_owned(), "b".to_owned()]))
        );
        assert_eq!(ctx.config_as::<Vec<String>>("missing"), Ok(None));
        let err = ctx.config_as::<Vec<String>>("bad");
        assert!(matches!(&err, Err(e) if e.key() == "bad"), "{err:?}");
    }

    #[test]
    fn mock_logs_keep_order_and_levels() {
        let ctx = Context::mock();
        ctx.trace("t");
        ctx.debug("d");
        ctx.info(String::from("i"));
        ctx.warn("w");
        ctx.error("e");
        let levels: Vec<Level> = ctx.logs().into_iter().map(|(level, _)| level).collect();
        assert_eq!(
            levels,
            [
                Level::Trace,
                Level::Debug,
                Level::Info,
                Level::Warn,
                Level::Error
            ]
        );
        assert_eq!(ctx.logs()[2].1, "i");
    }

    #[test]
    fn debug_output_hides_secret_values() {
        let ctx = Context::mock().with_secret("token", "hunter2");
        let shown = format!("{ctx:?}");
        assert!(shown.contains("token"));
        assert!(!shown.contains("hunter2"));
    }
}
