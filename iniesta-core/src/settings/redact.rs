//! Hiding the secrets in URLs, so that settings, errors and log lines can
//! show a URL without its password.
//!
//! There is one rule for the whole workspace: the Redlock's configuration
//! and errors use [`redact_url`] too.

use std::fmt;

/// `url` with its secrets replaced by `***`, so it can be logged:
///
/// - a password: `redis://user:secret@host` becomes `redis://user:***@host`;
/// - user information without a password, which may be a token on its own:
///   `redis://token@host` becomes `redis://***@host`;
/// - the values of `pass` and `password` query parameters (unix-socket URLs
///   carry the password there): `?db=1&password=secret` becomes
///   `?db=1&password=***`.
///
/// The user information is taken to end at the **last** `@`, so a password
/// with an unescaped `/`, `?`, `#` or `@` in it is hidden whole; the price
/// is that a path or query with an `@` in it is hidden too. Text without
/// `://` is hidden up to its last `@`. An empty password has nothing to
/// hide: `redis://user:@host` comes back unchanged.
///
/// ```
/// use iniesta_core::settings::redact_url;
///
/// assert_eq!(redact_url("redis://user:s3cret@host:6379/1"), "redis://user:***@host:6379/1");
/// assert_eq!(redact_url("redis://:s3cret@host/"), "redis://:***@host/");
/// assert_eq!(redact_url("redis://s3cret@host/"), "redis://***@host/");
/// assert_eq!(redact_url("unix:///tmp/redis.sock?pass=s3cret"), "unix:///tmp/redis.sock?pass=***");
/// assert_eq!(redact_url("redis://host:6379/2"), "redis://host:6379/2");
/// ```
pub fn redact_url(url: &str) -> String {
    let (scheme, rest) = match url.find("://") {
        Some(i) => url.split_at(i + 3),
        None => ("", url),
    };
    let Some(at) = rest.rfind('@') else {
        return format!("{scheme}{}", redact_query(rest));
    };
    let (userinfo, host_on) = rest.split_at(at);
    let userinfo = if scheme.is_empty() {
        // Not a URL: whatever precedes the `@` may be a secret.
        "***".to_owned()
    } else {
        match userinfo.split_once(':') {
            Some((user, "")) => format!("{user}:"),
            Some((user, _password)) => format!("{user}:***"),
            None if userinfo.is_empty() => String::new(),
            None => "***".to_owned(),
        }
    };
    format!("{scheme}{userinfo}{}", redact_query(host_on))
}

/// Hides the values of `pass` and `password` query parameters.
fn redact_query(tail: &str) -> String {
    let Some(q) = tail.find('?') else {
        return tail.to_owned();
    };
    let (path, query) = tail.split_at(q + 1);
    let (query, fragment) = query.split_at(query.find('#').unwrap_or(query.len()));
    let query: Vec<String> = query
        .split('&')
        .map(|pair| match pair.split_once('=') {
            Some((key, _))
                if key.eq_ignore_ascii_case("pass") || key.eq_ignore_ascii_case("password") =>
            {
                format!("{key}=***")
            }
            _ => pair.to_owned(),
        })
        .collect();
    format!("{path}{}{fragment}", query.join("&"))
}

/// Redacts every URL in a list's text (comma-separated or JSON).
pub(super) fn redact_text(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut token = String::new();
    for c in text.chars() {
        if matches!(c, ',' | '"' | '[' | ']') || c.is_whitespace() {
            out.push_str(&redact_url(&token));
            token.clear();
            out.push(c);
        } else {
            token.push(c);
        }
    }
    out.push_str(&redact_url(&token));
    out
}

/// Shows a setting that holds URLs, in `Debug`, with [`redact_url`] applied
/// to each of them.
pub(super) struct Redacted<'a, T: ?Sized>(pub(super) &'a T);

impl fmt::Debug for Redacted<'_, String> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&redact_url(self.0), f)
    }
}

impl<T> fmt::Debug for Redacted<'_, Option<T>>
where
    for<'b> Redacted<'b, T>: fmt::Debug,
{
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&self.0.as_ref().map(Redacted), f)
    }
}

impl<T> fmt::Debug for Redacted<'_, Vec<T>>
where
    for<'b> Redacted<'b, T>: fmt::Debug,
{
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.0.iter().map(Redacted)).finish()
    }
}
