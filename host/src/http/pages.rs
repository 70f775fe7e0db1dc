//! Server-rendered pages: the login form, the error page shown when an
//! authorization error cannot be sent back to the client, and the pages of
//! signing out.
//!
//! No external assets, no scripts: one inline style block allowed by a
//! per-response CSP nonce. Every page forbids framing (`frame-ancestors
//! 'none'`, clickjacking) and caching.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use ring::rand::{SecureRandom, SystemRandom};

use crate::grants::sign_in::ScopeLine;

const STYLE: &str = "body{font-family:system-ui,sans-serif;background:#f4f5f7;color:#1d2330;margin:0}\
main{max-width:22rem;margin:10vh auto;background:#fff;padding:2rem;border-radius:.75rem;box-shadow:0 1px 4px #0002}\
h1{font-size:1.4rem;margin:0 0 .25rem}p{margin:.25rem 0 1rem}label{display:block;font-weight:600;margin:.75rem 0 .25rem}\
input{box-sizing:border-box;width:100%;padding:.6rem;border:1px solid #8a93a6;border-radius:.4rem;font-size:1rem}\
button{margin-top:1.25rem;width:100%;padding:.7rem;border:0;border-radius:.4rem;background:#2453d4;color:#fff;font-size:1rem;cursor:pointer}\
button.secondary{background:#fff;color:#2453d4;border:1px solid #2453d4}li{margin:.35rem 0}\
button:focus,input:focus{outline:3px solid #9db4f5}.error{color:#a11;background:#fdecec;padding:.6rem;border-radius:.4rem}";

/// What the login form needs.
pub struct LoginForm<'a> {
    /// The application's display name.
    pub client_name: &'a str,
    /// The pending transaction id.
    pub tx: &'a str,
    /// The CSRF token (also in a cookie).
    pub csrf: &'a str,
    /// The email typed before, to keep after a failed attempt.
    pub email: &'a str,
    /// An error to show above the form.
    pub error: Option<&'a str>,
}

/// The login page.
pub fn login(form: &LoginForm<'_>, status: StatusCode) -> Response {
    let error = form
        .error
        .map(|e| {
            format!(
                "<p class=\"error\" role=\"alert\" id=\"error\">{}</p>",
                escape(e)
            )
        })
        .unwrap_or_default();
    let body = format!(
        "<h1>Sign in</h1><p>to continue to <strong>{client}</strong></p>{error}\
<form method=\"post\" action=\"/login\">\
<input type=\"hidden\" name=\"tx\" value=\"{tx}\"><input type=\"hidden\" name=\"csrf\" value=\"{csrf}\">\
<label for=\"email\">Email</label>\
<input id=\"email\" name=\"email\" type=\"email\" autocomplete=\"username\" required value=\"{email}\"{describe}>\
<label for=\"password\">Password</label>\
<input id=\"password\" name=\"password\" type=\"password\" autocomplete=\"current-password\" required{describe}>\
<button type=\"submit\">Sign in</button></form>",
        client = escape(form.client_name),
        tx = escape(form.tx),
        csrf = escape(form.csrf),
        email = escape(form.email),
        describe = if form.error.is_some() {
            " aria-describedby=\"error\""
        } else {
            ""
        },
    );
    page("Sign in", &body, status)
}

/// What the consent page needs.
pub struct ConsentForm<'a> {
    /// The application's display name.
    pub client_name: &'a str,
    /// The pending transaction id.
    pub tx: &'a str,
    /// The CSRF token.
    pub csrf: &'a str,
    /// What the application asks for.
    pub lines: &'a [ScopeLine],
}

/// The consent page: what a third-party application asks to do, and the
/// user's two answers.
pub fn consent(form: &ConsentForm<'_>) -> Response {
    let lines: String = form
        .lines
        .iter()
        .map(|l| {
            let scope = if l.words == l.scope {
                String::new()
            } else {
                format!(" <small>({})</small>", escape(&l.scope))
            };
            format!("<li>{}{scope}</li>", escape(&l.words))
        })
        .collect();
    let body = format!(
        "<h1>Allow access?</h1><p><strong>{client}</strong> asks to:</p><ul>{lines}</ul>\
<p>You can withdraw this later; the application then asks again.</p>\
<form method=\"post\" action=\"/consent\">\
<input type=\"hidden\" name=\"tx\" value=\"{tx}\"><input type=\"hidden\" name=\"csrf\" value=\"{csrf}\">\
<button type=\"submit\" name=\"decision\" value=\"allow\">Allow</button>\
<button type=\"submit\" name=\"decision\" value=\"deny\" class=\"secondary\">Deny</button></form>",
        client = escape(form.client_name),
        tx = escape(form.tx),
        csrf = escape(form.csrf),
    );
    page("Allow access", &body, StatusCode::OK)
}

/// The error page for requests that cannot be redirected back.
pub fn error(message: &str, status: StatusCode) -> Response {
    let body = format!(
        "<h1>This sign-in request cannot continue</h1><p class=\"error\" role=\"alert\">{}</p>\
<p>Return to the application and try again. If this keeps happening, tell the application's owner.</p>",
        escape(message)
    );
    page("Sign-in error", &body, status)
}

/// What the sign-out confirmation form carries back to `/oidc/logout`.
pub struct LogoutForm<'a> {
    /// The application's display name, when the request named one.
    pub client_name: Option<&'a str>,
    /// The hidden fields: the request's parameters and the confirmation.
    pub fields: &'a [(&'a str, &'a str)],
}

/// "Sign out?": asked when the request does not show that it comes from the
/// signed-in user's application (no `id_token_hint`, or one for someone
/// else), so that a link on any page cannot sign a user out unasked.
pub fn logout_confirm(form: &LogoutForm<'_>) -> Response {
    let from = form
        .client_name
        .map(|n| {
            format!(
                "<p><strong>{}</strong> asks to sign you out.</p>",
                escape(n)
            )
        })
        .unwrap_or_default();
    let fields: String = form
        .fields
        .iter()
        .map(|(k, v)| {
            format!(
                "<input type=\"hidden\" name=\"{}\" value=\"{}\">",
                escape(k),
                escape(v)
            )
        })
        .collect();
    let body = format!(
        "<h1>Sign out?</h1>{from}<p>You will be signed out of every application that uses this sign-in.</p>\
<form method=\"post\" action=\"/oidc/logout\">{fields}<button type=\"submit\">Sign out</button></form>"
    );
    page("Sign out", &body, StatusCode::OK)
}

/// The page after signing out when the application gave nowhere to return to.
pub fn signed_out() -> Response {
    page(
        "Signed out",
        "<h1>You are signed out</h1><p>You can close this window.</p>",
        StatusCode::OK,
    )
}

/// A sign-out request that cannot be honoured.
pub fn logout_error(message: &str, status: StatusCode) -> Response {
    let body = format!(
        "<h1>This sign-out request cannot continue</h1><p class=\"error\" role=\"alert\">{}</p>\
<p>Return to the application and try again.</p>",
        escape(message)
    );
    page("Sign-out error", &body, status)
}

fn page(title: &str, body: &str, status: StatusCode) -> Response {
    let nonce = nonce();
    let html = format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">\
<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\"><title>{title}</title>\
<style nonce=\"{nonce}\">{STYLE}</style></head><body><main>{body}</main></body></html>",
        title = escape(title),
    );
    let mut r = (status, html).into_response();
    let h = r.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    if let Ok(csp) = HeaderValue::from_str(&format!(
        "default-src 'none'; style-src 'nonce-{nonce}'; frame-ancestors 'none'; base-uri 'none'"
    )) {
        h.insert(header::CONTENT_SECURITY_POLICY, csp);
    }
    r
}

fn nonce() -> String {
    let mut b = [0u8; 16];
    // A failed RNG only weakens the nonce of one page; the CSP still applies.
    let _ = SystemRandom::new().fill(&mut b);
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(b)
}

/// Escapes text for HTML element content and quoted attribute values.
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_markup() {
        assert_eq!(
            escape("<a href=\"x\">'&'</a>"),
            "&lt;a href=&quot;x&quot;&gt;&#39;&amp;&#39;&lt;/a&gt;"
        );
    }

    #[test]
    fn login_page_forbids_framing_and_labels_its_fields() {
        let r = login(
            &LoginForm {
                client_name: "<Shop>",
                tx: "t",
                csrf: "c",
                email: "a@b",
                error: Some("Wrong email or password."),
            },
            StatusCode::UNAUTHORIZED,
        );
        let csp = r.headers()[header::CONTENT_SECURITY_POLICY]
            .to_str()
            .expect("csp")
            .to_owned();
        assert!(csp.contains("frame-ancestors 'none'"), "{csp}");
        assert_eq!(r.headers()[header::CACHE_CONTROL], "no-store");
        assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    }
}
