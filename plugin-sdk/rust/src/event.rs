//! The stage inputs: who is asking, for what, and the tokens so far.
//!
//! Plain data with public fields. The constructors and `with_*` methods exist
//! so that tests can build events in a line or two; the host fills every field.
//! The parts of an event are [`Part`]s: each reads like the value inside it,
//! and in a component it is copied from the host when first read.

use std::fmt;
use std::str::FromStr;

use serde_json::Value;

use crate::Part;

/// Named values: client metadata, API metadata, user metadata, claims.
///
/// Values are JSON: strings, numbers, booleans, lists and objects.
///
/// # Example
///
/// ```
/// use tessera_plugin_sdk::{Metadata, json};
///
/// let mut metadata = Metadata::new();
/// metadata.insert("partner".into(), json!("acme"));
/// assert_eq!(metadata["partner"], "acme");
/// ```
pub type Metadata = serde_json::Map<String, Value>;

/// The kind of application a client is.
///
/// # Example
///
/// ```
/// use tessera_plugin_sdk::AppType;
///
/// assert_eq!(AppType::RegularWeb.as_str(), "regular_web");
/// assert_eq!("machine".parse::<AppType>(), Ok(AppType::Machine));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum AppType {
    /// A single-page application in a browser: public, cannot keep a secret.
    Spa,
    /// A server-side web application: confidential.
    RegularWeb,
    /// A mobile or desktop application: public, cannot keep a secret.
    Native,
    /// A machine-to-machine client (client credentials): confidential.
    Machine,
}

impl AppType {
    /// Every app type, in declaration order.
    ///
    /// # Example
    ///
    /// ```
    /// use tessera_plugin_sdk::AppType;
    ///
    /// assert_eq!(AppType::ALL.len(), 4);
    /// ```
    pub const ALL: [AppType; 4] = [
        AppType::Spa,
        AppType::RegularWeb,
        AppType::Native,
        AppType::Machine,
    ];

    /// The name used in `tessera.toml`: `spa`, `regular_web`, `native` or
    /// `machine`.
    ///
    /// # Example
    ///
    /// ```
    /// use tessera_plugin_sdk::AppType;
    ///
    /// assert_eq!(AppType::Spa.as_str(), "spa");
    /// ```
    pub const fn as_str(self) -> &'static str {
        match self {
            AppType::Spa => "spa",
            AppType::RegularWeb => "regular_web",
            AppType::Native => "native",
            AppType::Machine => "machine",
        }
    }
}

impl fmt::Display for AppType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for AppType {
    type Err = ParseAppTypeError;

    /// Parses the names [`AppType::as_str`] returns.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        AppType::ALL
            .into_iter()
            .find(|app_type| app_type.as_str() == s)
            .ok_or_else(|| ParseAppTypeError(s.to_owned()))
    }
}

/// A string that is not the name of an [`AppType`].
///
/// # Example
///
/// ```
/// use tessera_plugin_sdk::AppType;
///
/// let err = "desktop".parse::<AppType>().unwrap_err();
/// assert_eq!(err.input(), "desktop");
/// assert!(err.to_string().contains("regular_web"));
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseAppTypeError(String);

impl ParseAppTypeError {
    /// The string that was not recognized.
    ///
    /// # Example
    ///
    /// ```
    /// use tessera_plugin_sdk::AppType;
    ///
    /// assert_eq!("web".parse::<AppType>().unwrap_err().input(), "web");
    /// ```
    pub fn input(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for ParseAppTypeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "unknown app type {:?} (expected spa, regular_web, native or machine)",
            self.0
        )
    }
}

impl std::error::Error for ParseAppTypeError {}

/// The application asking for a token. Always present: the host has
/// authenticated it before any plugin runs.
///
/// # Example
///
/// ```
/// use tessera_plugin_sdk::{AppType, Client};
///
/// let client = Client::new("acme-sync", "ACME order sync", AppType::Machine)
///     .with_metadata("partner", "acme");
/// assert_eq!(client.metadata["partner"], "acme");
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct Client {
    /// The client id (`client_id`).
    pub id: String,
    /// The application's display name.
    pub name: String,
    /// What kind of application it is.
    pub app_type: AppType,
    /// Metadata about the application, from configuration. Never secrets.
    pub metadata: Metadata,
}

impl Client {
    /// A client with no metadata.
    ///
    /// # Example
    ///
    /// ```
    /// use tessera_plugin_sdk::{AppType, Client};
    ///
    /// let client = Client::new("web", "Shop", AppType::RegularWeb);
    /// assert!(client.metadata.is_empty());
    /// ```
    pub fn new(id: impl Into<String>, name: impl Into<String>, app_type: AppType) -> Self {
        Client {
            id: id.into(),
            name: name.into(),
            app_type,
            metadata: Metadata::new(),
        }
    }

    /// Sets one metadata value.
    ///
    /// # Example
    ///
    /// ```
    /// use tessera_plugin_sdk::{AppType, Client, json};
    ///
    /// let client = Client::new("web", "Shop", AppType::RegularWeb)
    ///     .with_metadata("regions", json!(["eu", "us"]));
    /// assert_eq!(client.metadata["regions"][1], "us");
    /// ```
    pub fn with_metadata(mut self, key: impl Into<String>, value: impl Into<Value>) -> Self {
        self.metadata.insert(key.into(), value.into());
        self
    }
}

/// The API (resource server) a token is for.
///
/// # Example
///
/// ```
/// use tessera_plugin_sdk::Api;
///
/// let api = Api::new("https://orders.example.com", "Orders API")
///     .with_scopes(["read:orders", "write:orders"])
///     .with_metadata("owner", "orders-team");
/// assert_eq!(api.scopes.len(), 2);
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct Api {
    /// The API identifier: the token's audience (`aud`).
    pub identifier: String,
    /// The API's display name.
    pub name: String,
    /// Every scope the API defines.
    pub scopes: Vec<String>,
    /// Metadata about the API, from configuration (owners, policy inputs).
    pub metadata: Metadata,
}

impl Api {
    /// An API with no scopes and no metadata.
    ///
    /// # Example
    ///
    /// ```
    /// use tessera_plugin_sdk::Api;
    ///
    /// let api = Api::new("https://orders.example.com", "Orders API");
    /// assert!(api.scopes.is_empty());
    /// ```
    pub fn new(identifier: impl Into<String>, name: impl Into<String>) -> Self {
        Api {
            identifier: identifier.into(),
            name: name.into(),
            scopes: Vec::new(),
            metadata: Metadata::new(),
        }
    }

    /// Replaces the API's scopes.
    ///
    /// # Example
    ///
    /// ```
    /// use tessera_plugin_sdk::Api;
    ///
    /// let api = Api::new("https://orders.example.com", "Orders API").with_scopes(["read:orders"]);
    /// assert_eq!(api.scopes, ["read:orders"]);
    /// ```
    pub fn with_scopes<I, S>(mut self, scopes: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.scopes = scopes.into_iter().map(Into::into).collect();
        self
    }

    /// Sets one metadata value.
    ///
    /// # Example
    ///
    /// ```
    /// use tessera_plugin_sdk::{Api, json};
    ///
    /// let api = Api::new("https://orders.example.com", "Orders API")
    ///     .with_metadata("allowed_clients", json!(["acme-sync"]));
    /// assert_eq!(api.metadata["allowed_clients"][0], "acme-sync");
    /// ```
    pub fn with_metadata(mut self, key: impl Into<String>, value: impl Into<Value>) -> Self {
        self.metadata.insert(key.into(), value.into());
        self
    }
}

/// The signed-in user (user flows only).
///
/// # Example
///
/// ```
/// use tessera_plugin_sdk::User;
///
/// let user = User {
///     email: Some("ada@example.com".into()),
///     email_verified: true,
///     ..User::new("user-1")
/// };
/// assert_eq!(user.id, "user-1");
/// ```
#[derive(Debug, Clone, Default, PartialEq)]
pub struct User {
    /// The user's stable identifier: the tokens' `sub`.
    pub id: String,
    /// The user's email address, if known.
    pub email: Option<String>,
    /// Whether the email address was verified.
    pub email_verified: bool,
    /// The user's display name, if known.
    pub name: Option<String>,
    /// Data about the user that the system sets (roles, plan, tenant). Users
    /// cannot change it.
    pub app_metadata: Metadata,
    /// Data the user set themselves (preferences). Do not base access
    /// decisions on it.
    pub user_metadata: Metadata,
}

impl User {
    /// A user with only an id.
    ///
    /// # Example
    ///
    /// ```
    /// use tessera_plugin_sdk::User;
    ///
    /// let user = User::new("user-1");
    /// assert_eq!(user.email, None);
    /// ```
    pub fn new(id: impl Into<String>) -> Self {
        User {
            id: id.into(),
            ..User::default()
        }
    }
}

/// The HTTP request that started the transaction.
///
/// # Example
///
/// ```
/// use tessera_plugin_sdk::Request;
///
/// let request = Request {
///     params: vec![("audience".into(), "https://orders.example.com".into())],
///     ..Request::default()
/// };
/// assert_eq!(request.param("audience"), Some("https://orders.example.com"));
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Request {
    /// The client's IP address as the issuer saw it.
    pub ip: String,
    /// The `User-Agent` header, if sent.
    pub user_agent: Option<String>,
    /// The `Host` the request was sent to.
    pub hostname: String,
    /// The HTTP method (`GET`, `POST`).
    pub method: String,
    /// The request parameters, in order. Secrets, code verifiers, codes,
    /// refresh tokens and assertions are never included.
    pub params: Vec<(String, String)>,
}

impl Request {
    /// The first value of a request parameter.
    ///
    /// # Example
    ///
    /// ```
    /// use tessera_plugin_sdk::Request;
    ///
    /// let request = Request {
    ///     params: vec![("scope".into(), "read:orders".into())],
    ///     ..Request::default()
    /// };
    /// assert_eq!(request.param("scope"), Some("read:orders"));
    /// assert_eq!(request.param("state"), None);
    /// ```
    pub fn param(&self, name: &str) -> Option<&str> {
        self.params
            .iter()
            .find(|(key, _)| key == name)
            .map(|(_, value)| value.as_str())
    }
}

/// The protocol state of the token request.
///
/// # Example
///
/// ```
/// use tessera_plugin_sdk::Transaction;
///
/// let transaction = Transaction {
///     grant_type: "client_credentials".into(),
///     ..Transaction::default()
/// };
/// assert_eq!(transaction.redirect_uri, None);
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Transaction {
    /// An identifier for this transaction, unique per request; it is the
    /// access token's `jti`, so logs and tokens can be correlated.
    pub id: String,
    /// The OAuth grant: `client_credentials`, `authorization_code`, ...
    pub grant_type: String,
    /// The scopes the client asked for, in request order.
    pub requested_scopes: Vec<String>,
    /// The scopes the issuer grants before plugins run: the request narrowed
    /// by the client's grant and the API's scopes.
    pub granted_scopes: Vec<String>,
    /// The redirect URI of a user flow.
    pub redirect_uri: Option<String>,
    /// The `audience` or `resource` the client asked for, if any.
    pub requested_audience: Option<String>,
}

/// A token as shaped by the plugins that ran before this one.
///
/// # Example
///
/// ```
/// use tessera_plugin_sdk::TokenState;
///
/// let token = TokenState {
///     scopes: vec!["read:orders".into()],
///     ..TokenState::default()
/// };
/// assert!(token.has_scope("read:orders"));
/// ```
#[derive(Debug, Clone, Default, PartialEq)]
pub struct TokenState {
    /// The custom claims set so far (reserved claims are not listed).
    pub claims: Metadata,
    /// The scopes the token will carry so far.
    pub scopes: Vec<String>,
}

impl TokenState {
    /// Whether the token carries `scope` so far.
    ///
    /// # Example
    ///
    /// ```
    /// use tessera_plugin_sdk::TokenState;
    ///
    /// assert!(!TokenState::default().has_scope("read:orders"));
    /// ```
    pub fn has_scope(&self, scope: &str) -> bool {
        self.scopes.iter().any(|s| s == scope)
    }
}

/// Input of the credentials-exchange stage (client credentials grant).
///
/// # Example
///
/// ```
/// use tessera_plugin_sdk::{Api, AppType, Client, CredentialsExchangeEvent};
///
/// let event = CredentialsExchangeEvent::new(
///     Client::new("acme-sync", "ACME order sync", AppType::Machine),
///     Api::new("https://orders.example.com", "Orders API"),
/// )
/// .with_scopes(["read:orders"]);
/// assert_eq!(event.transaction.grant_type, "client_credentials");
/// assert_eq!(event.access_token.scopes, ["read:orders"]);
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct CredentialsExchangeEvent {
    /// The authenticated machine client.
    pub client: Part<Client>,
    /// The API the token is for.
    pub api: Part<Api>,
    /// The HTTP request.
    pub request: Part<Request>,
    /// The protocol state.
    pub transaction: Part<Transaction>,
    /// The access token so far.
    pub access_token: Part<TokenState>,
}

impl CredentialsExchangeEvent {
    /// An event for a `client_credentials` request of `client` for `api`, with
    /// no scopes, an empty request and no claims yet.
    ///
    /// # Example
    ///
    /// ```
    /// use tessera_plugin_sdk::{Api, AppType, Client, CredentialsExchangeEvent};
    ///
    /// let event = CredentialsExchangeEvent::new(
    ///     Client::new("acme-sync", "ACME order sync", AppType::Machine),
    ///     Api::new("https://orders.example.com", "Orders API"),
    /// );
    /// assert_eq!(
    ///     event.transaction.requested_audience.as_deref(),
    ///     Some("https://orders.example.com"),
    /// );
    /// ```
    pub fn new(client: Client, api: Api) -> Self {
        let transaction = Transaction {
            grant_type: "client_credentials".to_owned(),
            requested_audience: Some(api.identifier.clone()),
            ..Transaction::default()
        };
        CredentialsExchangeEvent {
            client: client.into(),
            api: api.into(),
            request: Request {
                method: "POST".to_owned(),
                ..Request::default()
            }
            .into(),
            transaction: transaction.into(),
            access_token: Part::default(),
        }
    }

    /// Sets the requested, granted and current access-token scopes at once.
    ///
    /// # Example
    ///
    /// ```
    /// use tessera_plugin_sdk::{Api, AppType, Client, CredentialsExchangeEvent};
    ///
    /// let event = CredentialsExchangeEvent::new(
    ///     Client::new("acme-sync", "ACME order sync", AppType::Machine),
    ///     Api::new("https://orders.example.com", "Orders API"),
    /// )
    /// .with_scopes(["read:orders", "write:orders"]);
    /// assert_eq!(event.transaction.granted_scopes.len(), 2);
    /// ```
    pub fn with_scopes<I, S>(mut self, scopes: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        let scopes: Vec<String> = scopes.into_iter().map(Into::into).collect();
        self.transaction.requested_scopes = scopes.clone();
        self.transaction.granted_scopes = scopes.clone();
        self.access_token.scopes = scopes;
        self
    }
}

/// Input of the authorize stage: a user signed in and an authorization code is
/// about to be issued.
///
/// # Example
///
/// ```
/// use tessera_plugin_sdk::{Api, AppType, AuthorizeEvent, Client, User};
///
/// let event = AuthorizeEvent::new(
///     Client::new("shop", "Shop", AppType::RegularWeb),
///     User::new("user-1"),
/// )
/// .with_api(Api::new("https://orders.example.com", "Orders API"))
/// .with_scopes(["openid", "read:orders"]);
/// assert!(event.api.is_some());
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct AuthorizeEvent {
    /// The application the user signs in to.
    pub client: Part<Client>,
    /// The API the access token is for; `None` when only OpenID Connect scopes
    /// were asked for. Read with the event (it decides most authorize
    /// plugins), so it can be matched as an `Option`.
    pub api: Option<Api>,
    /// The signed-in user.
    pub user: Part<User>,
    /// The HTTP request.
    pub request: Part<Request>,
    /// The protocol state.
    pub transaction: Part<Transaction>,
    /// The access token so far.
    pub access_token: Part<TokenState>,
    /// The ID token's custom claims so far (its scopes are always empty).
    pub id_token: Part<TokenState>,
}

impl AuthorizeEvent {
    /// An event for `user` signing in to `client`, with no API, no scopes, an
    /// empty request and no claims yet.
    ///
    /// # Example
    ///
    /// ```
    /// use tessera_plugin_sdk::{AppType, AuthorizeEvent, Client, User};
    ///
    /// let event = AuthorizeEvent::new(Client::new("shop", "Shop", AppType::Spa), User::new("u"));
    /// assert_eq!(event.transaction.grant_type, "authorization_code");
    /// assert!(event.api.is_none());
    /// ```
    pub fn new(client: Client, user: User) -> Self {
        AuthorizeEvent {
            client: client.into(),
            api: None,
            user: user.into(),
            request: Request {
                method: "GET".to_owned(),
                ..Request::default()
            }
            .into(),
            transaction: Transaction {
                grant_type: "authorization_code".to_owned(),
                ..Transaction::default()
            }
            .into(),
            access_token: Part::default(),
            id_token: Part::default(),
        }
    }

    /// Sets the API (and the requested audience) the access token is for.
    ///
    /// # Example
    ///
    /// ```
    /// use tessera_plugin_sdk::{Api, AppType, AuthorizeEvent, Client, User};
    ///
    /// let event = AuthorizeEvent::new(Client::new("shop", "Shop", AppType::Spa), User::new("u"))
    ///     .with_api(Api::new("https://orders.example.com", "Orders API"));
    /// assert_eq!(event.api.unwrap().name, "Orders API");
    /// ```
    pub fn with_api(mut self, api: Api) -> Self {
        self.transaction.requested_audience = Some(api.identifier.clone());
        self.api = Some(api);
        self
    }

    /// Sets the requested, granted and current access-token scopes at once.
    ///
    /// # Example
    ///
    /// ```
    /// use tessera_plugin_sdk::{AppType, AuthorizeEvent, Client, User};
    ///
    /// let event = AuthorizeEvent::new(Client::new("shop", "Shop", AppType::Spa), User::new("u"))
    ///     .with_scopes(["openid"]);
    /// assert_eq!(event.transaction.requested_scopes, ["openid"]);
    /// ```
    pub fn with_scopes<I, S>(mut self, scopes: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        let scopes: Vec<String> = scopes.into_iter().map(Into::into).collect();
        self.transaction.requested_scopes = scopes.clone();
        self.transaction.granted_scopes = scopes.clone();
        self.access_token.scopes = scopes;
        self
    }
}
