//! The front half of the authorization code flow (RFC 6749 §4.1.1–4.1.2,
//! OpenID Connect Core §3.1.2): a validated request either finds its user
//! signed in and gets a code at once, or is parked in the store as a pending
//! sign-in, so that any replica can finish it, while the user gives a
//! password.
//!
//! A pending sign-in carries a CSRF token for its form and is bound to the
//! browser that started it, so a form cannot be replayed into someone else's
//! browser (login CSRF). Completing means: the API's `user_access` policy and
//! the scope ceiling ([`super::policy`]), the authorize-stage plugins, then a
//! single-use code stored as a hash. A plugin failure or denial stores
//! nothing.
//!
//! A third-party application (`first_party = false`) needs the user's
//! consent before the plugins run: [`complete`] says so
//! ([`Completed::NeedsConsent`]), the request is parked again, for the
//! signed-in user, and [`answer_consent`] takes the user's answer. What a
//! user allowed is remembered per client and audience, so the page comes
//! back only for scopes not allowed before, or with `prompt=consent`.
//!
//! No HTTP here: `http::authorize` reads cookies and forms and turns these
//! results into pages, cookies and redirects.

use std::sync::Arc;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::{Deserialize, Serialize};

use super::policy;
use super::throttle::{self, Subjects, Throttled};
use super::user_tokens::opaque_token;
use crate::config::{Api, Client, Config};
use crate::oauth::authorize::{AuthorizeRequest, redirect_with};
use crate::oauth::{ErrorCode, OAuthError};
use crate::plugin::TokenShape;
use crate::plugin::event::{RequestInfo, TransactionInfo};
use crate::plugin::pipeline::{self, Authorize};
use crate::store::{CodeRecord, User, secret_hash};
use crate::trace::Decision;
use crate::{Issuer, Snapshot};

/// How long an authorization code lives.
pub const CODE_LIFETIME: u64 = 300;
/// How long a pending sign-in (the login form) stays valid.
pub const PENDING_LIFETIME: u64 = 600;
/// How long a sign-in lasts.
pub const SESSION_LIFETIME: u64 = 8 * 3600;
/// How long a login waits for a free password check before it is told to
/// come back ([`Refusal::Busy`]).
pub const PASSWORD_QUEUE_WAIT: std::time::Duration = std::time::Duration::from_secs(2);
/// Live pending sign-ins one source address may hold ([`throttle::source`]).
pub const MAX_PENDING_PER_ADDRESS: u64 = 100;
/// Live pending sign-ins the store may hold in all.
pub const MAX_PENDING: u64 = 100_000;

/// A parked authorization request, as the store keeps it.
#[derive(Serialize, Deserialize)]
struct Pending {
    request: AuthorizeRequest,
    csrf: String,
    browser: String,
    params: Vec<(String, String)>,
    /// Set when the user is known and only their consent is missing: the
    /// request waits for the consent form, not the login form.
    #[serde(default)]
    consent_for: Option<ConsentFor>,
}

/// The signed-in user a consent form is for.
#[derive(Serialize, Deserialize)]
struct ConsentFor {
    user_id: String,
    auth_time: u64,
}

/// Why a sign-in cannot go on. The user sees a page, not a redirect: none of
/// these is the client's doing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// The pending sign-in is unknown or has expired.
    Expired,
    /// The form's CSRF token or the browser binding does not match.
    OtherBrowser,
    /// The client has left the configuration since the sign-in started.
    UnknownClient,
    /// The form was submitted before.
    AlreadyUsed,
    /// The store failed.
    Unavailable,
    /// Every password check is busy and none came free within
    /// [`PASSWORD_QUEUE_WAIT`]: try again in a moment.
    Busy,
    /// The random number generator failed.
    NoRandom,
    /// The source address holds [`MAX_PENDING_PER_ADDRESS`] pending
    /// sign-ins already.
    TooManyFromAddress,
    /// The store holds [`MAX_PENDING`] pending sign-ins already.
    Full,
}

/// A sign-in waiting for its user.
pub struct Challenge {
    /// The pending sign-in's id (the form carries it; the store has its hash).
    pub tx: String,
    /// The form's CSRF token.
    pub csrf: String,
    /// The browser binding.
    pub browser: String,
    /// Whether `browser` is new, so the browser must be given it.
    pub new_browser: bool,
}

/// Parks `request` until its user signs in. `browser` is the binding the
/// browser already has, if any.
pub async fn start(
    issuer: &Issuer,
    request: AuthorizeRequest,
    params: Vec<(String, String)>,
    browser: Option<String>,
    address: std::net::IpAddr,
) -> Result<Challenge, Refusal> {
    park(issuer, request, params, browser, address, None).await
}

/// Parks `request` of the signed-in `user` until they answer the consent
/// page ([`answer_consent`]).
pub async fn ask_consent(
    issuer: &Issuer,
    request: AuthorizeRequest,
    params: Vec<(String, String)>,
    browser: Option<String>,
    address: std::net::IpAddr,
    user: &User,
    auth_time: u64,
) -> Result<Challenge, Refusal> {
    let consent_for = ConsentFor {
        user_id: user.id.clone(),
        auth_time,
    };
    park(issuer, request, params, browser, address, Some(consent_for)).await
}

async fn park(
    issuer: &Issuer,
    request: AuthorizeRequest,
    params: Vec<(String, String)>,
    browser: Option<String>,
    address: std::net::IpAddr,
    consent_for: Option<ConsentFor>,
) -> Result<Challenge, Refusal> {
    let now = issuer.clock.now();
    let source = throttle::source(address);
    let (from_address, total) = issuer
        .store
        .pending_counts(&source, now, MAX_PENDING)
        .await
        .map_err(|e| unavailable(e, "counting pending sign-ins"))?;
    if from_address >= MAX_PENDING_PER_ADDRESS {
        return Err(Refusal::TooManyFromAddress);
    }
    if total >= MAX_PENDING {
        tracing::warn!(
            limit = MAX_PENDING,
            "pending sign-ins at their ceiling; new sign-ins are refused"
        );
        return Err(Refusal::Full);
    }
    let fresh = || opaque_token().map_err(|_| Refusal::NoRandom);
    let (tx, csrf) = (fresh()?, fresh()?);
    let key = issuer
        .browser_key()
        .await
        .map_err(|e| unavailable(e, "reading the browser-binding key"))?;
    let (browser, new_browser) = match browser.filter(|b| genuine_binding(key, b)) {
        Some(b) => (b, false),
        None => (new_binding(key, fresh()?), true),
    };
    let pending = Pending {
        request,
        csrf: csrf.clone(),
        browser: browser.clone(),
        params,
        consent_for,
    };
    let json = serde_json::to_value(&pending).map_err(|_| Refusal::Unavailable)?;
    issuer
        .store
        .put_pending(&secret_hash(&tx), &json, &source, now + PENDING_LIFETIME)
        .await
        .map_err(|e| unavailable(e, "storing a pending sign-in"))?;
    Ok(Challenge {
        tx,
        csrf,
        browser,
        new_browser,
    })
}

/// A browser binding the issuer makes: `RANDOM.MAC`, the MAC an HMAC-SHA256
/// of `RANDOM` under the store's browser-binding key. A value the browser
/// made up is not one, so a cookie set by someone else (a sibling subdomain,
/// an attacker's page) cannot choose what a sign-in is bound to.
fn new_binding(key: &ring::hmac::Key, random: String) -> String {
    let mac = ring::hmac::sign(key, random.as_bytes());
    format!("{random}.{}", URL_SAFE_NO_PAD.encode(mac.as_ref()))
}

/// Whether `value` is a binding [`new_binding`] made with `key`.
fn genuine_binding(key: &ring::hmac::Key, value: &str) -> bool {
    let Some((random, mac)) = value.split_once('.') else {
        return false;
    };
    let Ok(mac) = URL_SAFE_NO_PAD.decode(mac) else {
        return false;
    };
    ring::hmac::verify(key, random.as_bytes(), &mac).is_ok()
}

/// A submitted login form and the browser it came from.
pub struct LoginAttempt<'a> {
    /// The pending sign-in's id.
    pub tx: &'a str,
    /// The form's CSRF token.
    pub csrf: Option<&'a str>,
    /// The browser binding the browser sent.
    pub browser: Option<&'a str>,
    /// The email address typed.
    pub email: &'a str,
    /// The password typed.
    pub password: &'a str,
    /// Where it came from ([`crate::http::client_ip`]).
    pub address: std::net::IpAddr,
}

/// Why a login form did not sign anyone in.
pub enum LoginFailure {
    /// The sign-in cannot go on.
    Refused(Refusal),
    /// Wrong email or password: the form is shown again, for the same
    /// pending sign-in.
    WrongPassword {
        /// The client, for its name.
        client: Arc<Client>,
        /// The form's CSRF token.
        csrf: String,
    },
    /// Too many failed sign-ins for this account or from this address: the
    /// password was not looked at; the form is shown again with the wait.
    Throttled {
        /// The client, for its name.
        client: Arc<Client>,
        /// The form's CSRF token.
        csrf: String,
        /// How long, and whether it is the lock.
        wait: Throttled,
    },
}

impl From<Refusal> for LoginFailure {
    fn from(r: Refusal) -> Self {
        LoginFailure::Refused(r)
    }
}

/// A user who just signed in, with the request that was waiting.
pub struct SignedIn {
    /// The client that asked.
    pub client: Arc<Client>,
    /// Its authorization request.
    pub request: AuthorizeRequest,
    /// The request's parameters as plugins see them.
    pub params: Vec<(String, String)>,
    /// The user.
    pub user: User,
    /// The new session's id, for the session cookie (the store has its hash).
    pub session: String,
    /// When the user signed in.
    pub auth_time: u64,
}

/// Checks a login form: the pending sign-in, its binding to this browser, the
/// password. On success the pending sign-in is spent and a session starts.
pub async fn login(issuer: &Issuer, attempt: LoginAttempt<'_>) -> Result<SignedIn, LoginFailure> {
    let now = issuer.clock.now();
    let tx_hash = secret_hash(attempt.tx);
    let pending: Pending = issuer
        .store
        .get_pending(&tx_hash, now)
        .await
        .map_err(|e| unavailable(e, "reading a pending sign-in"))?
        .and_then(|v| serde_json::from_value(v).ok())
        .ok_or(Refusal::Expired)?;
    if pending.consent_for.is_some() {
        // A consent form's id posted as a login form.
        return Err(Refusal::Expired.into());
    }
    if !pending.belongs_to(attempt.csrf, attempt.browser) {
        return Err(Refusal::OtherBrowser.into());
    }
    let client = issuer
        .snapshot()
        .config
        .clients
        .get(&pending.request.client_id)
        .cloned()
        .ok_or(Refusal::UnknownClient)?;
    let subjects = Subjects::new(attempt.email, attempt.address);
    let throttled = async || {
        let verdict = throttle::check(&issuer.store, &subjects, issuer.clock.now())
            .await
            .map_err(|e| unavailable(e, "reading login failures"))?;
        verdict.map_err(|wait| {
            crate::audit::login_failed(&client.id, attempt.address, "throttled");
            LoginFailure::Throttled {
                client: client.clone(),
                csrf: pending.csrf.clone(),
                wait,
            }
        })
    };
    // Looked at before queueing, so a throttled guesser waits for nothing.
    throttled().await?;
    // Taken before the email is looked at, so known and unknown users queue
    // alike.
    let _check = tokio::time::timeout(PASSWORD_QUEUE_WAIT, issuer.password_checks.acquire())
        .await
        .map_err(|_| Refusal::Busy)?
        .map_err(|_| Refusal::Busy)?;
    // And again with the permit: guesses sent in parallel were all let in
    // above, and the failures of those ahead of this one now count.
    throttled().await?;
    let verified = issuer
        .store
        .verify_password(attempt.email, attempt.password)
        .await
        .map_err(|e| unavailable(e, "checking a password"))?;
    let Some(user) = verified else {
        throttle::failed(&issuer.store, &subjects, issuer.clock.now())
            .await
            .map_err(|e| unavailable(e, "counting a failed sign-in"))?;
        // Unknown accounts and wrong passwords alike, as the user is told.
        crate::audit::login_failed(&client.id, attempt.address, "wrong_email_or_password");
        return Err(LoginFailure::WrongPassword {
            client: client.clone(),
            csrf: pending.csrf.clone(),
        });
    };
    throttle::succeeded(&issuer.store, &subjects)
        .await
        .map_err(|e| unavailable(e, "clearing login failures"))?;
    crate::audit::login_succeeded(&client.id, attempt.address, &user.id);
    // One-shot: a second submission of the same form finds nothing.
    issuer
        .store
        .take_pending(&tx_hash, now)
        .await
        .map_err(|e| unavailable(e, "spending a pending sign-in"))?
        .ok_or(Refusal::AlreadyUsed)?;
    let session = opaque_token().map_err(|_| Refusal::NoRandom)?;
    issuer
        .store
        .create_session(
            &secret_hash(&session),
            &user.id,
            now,
            now + SESSION_LIFETIME,
        )
        .await
        .map_err(|e| unavailable(e, "starting a session"))?;
    Ok(SignedIn {
        client,
        request: pending.request,
        params: pending.params,
        user,
        session,
        auth_time: now,
    })
}

impl Pending {
    /// Whether a form with `csrf`, sent by the browser with the binding
    /// `browser`, is this one's.
    fn belongs_to(&self, csrf: Option<&str>, browser: Option<&str>) -> bool {
        csrf == Some(self.csrf.as_str()) && browser == Some(self.browser.as_str())
    }
}

/// A submitted consent form and the browser it came from.
pub struct ConsentAnswer<'a> {
    /// The pending request's id.
    pub tx: &'a str,
    /// The form's CSRF token.
    pub csrf: Option<&'a str>,
    /// The browser binding the browser sent.
    pub browser: Option<&'a str>,
    /// The session cookie the browser sent: the consent is the signed-in
    /// user's only while they are signed in.
    pub session: Option<&'a str>,
    /// Whether the user allowed the application.
    pub allow: bool,
}

/// The user's answer on the consent page, with the request that waited.
pub struct Consented {
    /// The client that asked.
    pub client: Arc<Client>,
    /// Its authorization request.
    pub request: AuthorizeRequest,
    /// The request's parameters as plugins see them.
    pub params: Vec<(String, String)>,
    /// The user.
    pub user: User,
    /// When the user signed in.
    pub auth_time: u64,
    /// Whether they allowed it; when they did, it is remembered.
    pub allowed: bool,
}

/// Checks a consent form: the pending request, its binding to this browser
/// and to the signed-in user. The pending request is spent; an allowed
/// consent is remembered for the request's client, audience and scopes.
pub async fn answer_consent(
    issuer: &Issuer,
    answer: ConsentAnswer<'_>,
) -> Result<Consented, Refusal> {
    let now = issuer.clock.now();
    let tx_hash = secret_hash(answer.tx);
    let pending: Pending = issuer
        .store
        .get_pending(&tx_hash, now)
        .await
        .map_err(|e| unavailable(e, "reading a pending consent"))?
        .and_then(|v| serde_json::from_value(v).ok())
        .ok_or(Refusal::Expired)?;
    let Some(consent_for) = &pending.consent_for else {
        // A login form's id posted as a consent form.
        return Err(Refusal::Expired);
    };
    if !pending.belongs_to(answer.csrf, answer.browser) {
        return Err(Refusal::OtherBrowser);
    }
    let (user, _) = signed_in_user(issuer, answer.session)
        .await
        .map_err(|_| Refusal::Unavailable)?
        .ok_or(Refusal::Expired)?;
    if user.id != consent_for.user_id {
        return Err(Refusal::OtherBrowser);
    }
    let client = issuer
        .snapshot()
        .config
        .clients
        .get(&pending.request.client_id)
        .cloned()
        .ok_or(Refusal::UnknownClient)?;
    issuer
        .store
        .take_pending(&tx_hash, now)
        .await
        .map_err(|e| unavailable(e, "spending a pending consent"))?
        .ok_or(Refusal::AlreadyUsed)?;
    let req = &pending.request;
    if answer.allow {
        issuer
            .store
            .grant_consent(
                &user.id,
                &client.id,
                req.audience.as_deref(),
                &req.scopes(),
                now,
            )
            .await
            .map_err(|e| unavailable(e, "remembering a consent"))?;
    }
    Ok(Consented {
        auth_time: consent_for.auth_time,
        client,
        request: pending.request,
        params: pending.params,
        user,
        allowed: answer.allow,
    })
}

/// The user of the session `session` (the cookie's value), and when they
/// signed in; `None` when there is no such live session.
pub async fn signed_in_user(
    issuer: &Issuer,
    session: Option<&str>,
) -> Result<Option<(User, u64)>, OAuthError> {
    let Some(sid) = session else {
        return Ok(None);
    };
    let store = &issuer.store;
    let Some(session) = store
        .session(&secret_hash(sid), issuer.clock.now())
        .await
        .map_err(super::store_error)?
    else {
        return Ok(None);
    };
    let user = store
        .user_by_id(&session.user_id)
        .await
        .map_err(super::store_error)?;
    Ok(user.map(|u| (u, session.auth_time)))
}

/// A request and the signed-in user it is for.
pub struct Completion<'a> {
    /// The client.
    pub client: &'a Arc<Client>,
    /// Its validated request.
    pub request: &'a AuthorizeRequest,
    /// The user.
    pub user: &'a User,
    /// When the user signed in.
    pub auth_time: u64,
    /// The HTTP request as plugins see it.
    pub info: RequestInfo,
    /// Whether the user has just allowed this request on the consent page.
    pub consented: bool,
}

/// The id of the transaction that issues the code whose hash is
/// `code_hash`: short and not secret (the code itself is), what plugins see
/// as `transaction.id`, and the id of the sign-in's decision trace, which
/// the code's redemption names.
pub fn transaction_id(code_hash: &str) -> String {
    code_hash.chars().take(22).collect()
}

/// What [`complete`] came to.
pub enum Completed {
    /// Where to send the browser: the client's redirect URI with `code`,
    /// `state` and `iss`; and the transaction's id ([`transaction_id`]).
    Code {
        /// The redirect.
        location: String,
        /// The transaction.
        transaction: String,
    },
    /// The user must first allow the application these scopes (park the
    /// request with [`ask_consent`] and show them).
    NeedsConsent(Vec<ScopeLine>),
}

/// One line of the consent page: a scope and what it lets the application do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScopeLine {
    /// The scope.
    pub scope: String,
    /// In plain words (the API's `scope_descriptions`, or the scope itself).
    pub words: String,
}

/// Policy, consent, plugins, code. `decision` receives the policy's
/// decision and every plugin run as they happen, also when the request
/// fails; its trace id is the transaction id the plugins saw.
pub async fn complete(
    issuer: &Issuer,
    snapshot: &Snapshot,
    c: Completion<'_>,
    decision: &mut Decision,
) -> Result<Completed, OAuthError> {
    let config = &snapshot.config;
    let req = c.request;
    let api: Option<&Arc<Api>> = match &req.audience {
        Some(aud) => Some(policy::named_api(config, aud)?),
        None if req.api_scopes.is_empty() => None,
        None => {
            return Err(OAuthError::invalid_request(
                "audience (or resource) is required when asking for API scopes",
            ));
        }
    };
    decision.api = api.map(|a| a.identifier.clone());
    decision.rule = api.map(|a| policy::user_rule(a));
    decision.requested = Some(req.scopes());
    let ceiling: &[String] = match api {
        None => &[],
        Some(api) => policy::user_ceiling(config, c.client, api)?,
    };
    decision.ceiling = ceiling.to_vec();
    if let Some(extra) = req.api_scopes.iter().find(|s| !ceiling.contains(s)) {
        return Err(OAuthError::invalid_scope(format!(
            "scope {} is not available to this application",
            crate::oauth::params::echo(extra)
        )));
    }
    if !c.consented && needs_consent(issuer, &c, api).await? {
        if req.prompt_none {
            return Err(OAuthError::new(
                ErrorCode::ConsentRequired,
                "the user has not allowed this application these scopes",
            ));
        }
        return Ok(Completed::NeedsConsent(scope_lines(req, api)));
    }

    let now = issuer.clock.now();
    let code = opaque_token()?;
    let code_hash = secret_hash(&code);
    let transaction = TransactionInfo {
        id: transaction_id(&code_hash),
        grant_type: "authorization_code",
        requested_scopes: req.scopes(),
        granted_scopes: req.api_scopes.clone(),
        redirect_uri: Some(req.redirect_uri.clone()),
        requested_audience: req.audience.clone(),
    };
    let mut shape = TokenShape {
        scopes: req.api_scopes.clone(),
        ..TokenShape::default()
    };
    decision.granted.clone_from(&req.api_scopes);
    pipeline::authorize(
        &issuer.runtime,
        &snapshot.plugins,
        config.claims,
        Authorize {
            client: c.client,
            api: api.map(|a| &**a),
            user: c.user,
            request: &c.info,
            transaction: &transaction,
        },
        ceiling,
        &mut shape,
        &mut decision.stage,
    )
    .await
    .map_err(|e| e.to_oauth())?;
    decision.scopes.clone_from(&shape.scopes);
    decision.claims.clone_from(&shape.claims);
    decision.id_claims.clone_from(&shape.id_claims);

    let mut scopes = req.oidc_scopes.clone();
    scopes.extend(shape.scopes);
    issuer
        .store
        .put_code(&CodeRecord {
            code_hash,
            client_id: c.client.id.clone(),
            redirect_uri: req.redirect_uri.clone(),
            code_challenge: req.code_challenge.clone(),
            user_id: c.user.id.clone(),
            scopes,
            audience: api.map(|a| a.identifier.clone()),
            nonce: req.nonce.clone(),
            auth_time: c.auth_time,
            access_claims: shape.claims,
            id_claims: shape.id_claims,
            issued_at: now,
            expires_at: now + CODE_LIFETIME,
        })
        .await
        .map_err(super::store_error)?;
    tracing::debug!(client = %c.client.id, user = %c.user.id, transaction = %transaction.id, "authorization code issued");
    let mut pairs = vec![("code", code.as_str())];
    if let Some(s) = &req.state {
        pairs.push(("state", s));
    }
    pairs.push(("iss", &config.server.issuer));
    Ok(Completed::Code {
        location: redirect_with(&req.redirect_uri, &pairs),
        transaction: transaction.id,
    })
}

/// Whether the user must be asked: always with `prompt=consent`; for a
/// third-party application when it asks for a scope the user has not
/// allowed it for this audience.
async fn needs_consent(
    issuer: &Issuer,
    c: &Completion<'_>,
    api: Option<&Arc<Api>>,
) -> Result<bool, OAuthError> {
    if c.request.prompt_consent {
        return Ok(true);
    }
    if c.client.first_party {
        return Ok(false);
    }
    let allowed = issuer
        .store
        .consented_scopes(&c.user.id, &c.client.id, api.map(|a| a.identifier.as_str()))
        .await
        .map_err(super::store_error)?;
    Ok(c.request.scopes().iter().any(|s| !allowed.contains(s)))
}

/// What the consent page lists for `req`: its OpenID Connect scopes in
/// Tessera's words, then its API scopes in the API's.
pub fn scope_lines(req: &AuthorizeRequest, api: Option<&Arc<Api>>) -> Vec<ScopeLine> {
    let oidc = req.oidc_scopes.iter().map(|s| {
        let words = match s.as_str() {
            "openid" => "Know who you are: your account's id",
            "profile" => "See your name",
            "email" => "See your email address",
            "offline_access" => "Keep this access while you are not using the application",
            other => other,
        };
        ScopeLine {
            scope: s.clone(),
            words: words.to_owned(),
        }
    });
    let apis = req.api_scopes.iter().map(|s| ScopeLine {
        scope: s.clone(),
        words: api
            .and_then(|a| a.scope_descriptions.get(s))
            .cloned()
            .unwrap_or_else(|| s.clone()),
    });
    oidc.chain(apis).collect()
}

/// Where an error goes once the client and its redirect URI are trusted:
/// the redirect URI with `error`, `error_description`, `state` and `iss`
/// (RFC 6749 §4.1.2.1, RFC 9207).
pub fn error_location(
    config: &Config,
    redirect_uri: &str,
    state: Option<&str>,
    error: &OAuthError,
) -> String {
    let description = error.safe_description();
    let mut pairs = vec![
        ("error", error.code.as_str()),
        ("error_description", description.as_str()),
    ];
    if let Some(s) = state {
        pairs.push(("state", s));
    }
    pairs.push(("iss", &config.server.issuer));
    redirect_with(redirect_uri, &pairs)
}

fn unavailable(e: crate::store::StoreError, doing: &str) -> Refusal {
    tracing::error!(error = %e, "{doing} failed");
    Refusal::Unavailable
}
