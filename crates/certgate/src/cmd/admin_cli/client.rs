//! The HTTP side of the admin CLI: one bearer-authenticated JSON request per call, and the
//! mapping of every failure (API error answer, unreachable node, bad local input) to a
//! [`CliError`] with its exit status.

use std::fmt;
use std::time::Duration;

use reqwest::{Method, StatusCode, Url};
use serde_json::Value;

/// How long one admin request may take; a write waits for the node to apply it (SPEC §2).
const REQUEST_TIMEOUT: Duration = Duration::from_secs(60);
/// How long connecting to the admin listener may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// Why an admin subcommand failed.
#[derive(Debug)]
pub enum CliError {
    /// The admin API refused the request with its error shape `{"error":{"code","message"}}`.
    Api {
        /// HTTP status.
        status: u16,
        /// The snake_case error code.
        code: String,
        /// The API's sentence.
        message: String,
    },
    /// The admin API answered an error status without the error shape (e.g. a proxy in front).
    Unexpected {
        /// HTTP status with its reason phrase.
        status: String,
        /// The request URL.
        url: String,
        /// The start of the body, if any.
        body: String,
    },
    /// The admin API could not be reached or did not answer.
    Connect {
        /// The request URL.
        url: String,
        /// What went wrong.
        reason: String,
    },
    /// Local input is unusable (no token, unreadable file, bad URL): nothing was sent. Exit 2.
    Input(String),
    /// Anything else (exit 1).
    Other(String),
}

impl CliError {
    /// The process exit status for this error: 2 for local input, 1 otherwise.
    pub fn exit_code(&self) -> u8 {
        match self {
            CliError::Input(_) => 2,
            _ => 1,
        }
    }
}

impl fmt::Display for CliError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CliError::Api {
                status,
                code,
                message,
            } => write!(f, "{message} ({code}, HTTP {status})"),
            CliError::Unexpected { status, url, body } => {
                write!(f, "the admin API answered HTTP {status} to {url}")?;
                if !body.is_empty() {
                    write!(f, ": {body}")?;
                }
                Ok(())
            }
            CliError::Connect { url, reason } => {
                write!(f, "cannot reach the admin API at {url}: {reason}")
            }
            CliError::Input(m) | CliError::Other(m) => f.write_str(m),
        }
    }
}

impl std::error::Error for CliError {}

/// A successful answer: its status and body text (empty for 204).
#[derive(Debug)]
pub struct Answer {
    /// HTTP status (2xx).
    pub status: u16,
    /// The body as received.
    pub body: String,
}

impl Answer {
    /// The body parsed as JSON.
    pub fn json(&self) -> Result<Value, CliError> {
        serde_json::from_str(&self.body).map_err(|e| {
            CliError::Other(format!(
                "the admin API answered HTTP {} with a body that is not JSON ({e})",
                self.status
            ))
        })
    }

    /// Prints the body as received (the `--json` output), followed by a newline.
    pub fn print_raw(&self) {
        let body = self.body.trim_end();
        if !body.is_empty() {
            println!("{body}");
        }
    }
}

/// A client of one node's admin API.
#[derive(Debug)]
pub struct AdminClient {
    http: reqwest::Client,
    base: String,
    token: String,
}

impl AdminClient {
    /// Checks the base URL and the token and builds the client; sends nothing.
    pub fn new(admin_url: &str, token: Option<&str>) -> Result<Self, CliError> {
        let url = Url::parse(admin_url).map_err(|e| {
            CliError::Input(format!(
                "invalid admin API URL \"{admin_url}\" (--admin or CERTGATE_ADMIN_URL): {e}"
            ))
        })?;
        if url.scheme() != "http" && url.scheme() != "https" {
            return Err(CliError::Input(format!(
                "invalid admin API URL \"{admin_url}\": the scheme must be http or https"
            )));
        }
        let token = match token.map(str::trim) {
            Some(t) if !t.is_empty() => t.to_owned(),
            _ => return Err(CliError::Input(
                "no admin token: pass --token TOKEN or set CERTGATE_ADMIN_TOKEN (a node with no \
                     configured token keeps the one it generated in <data_dir>/admin-token)"
                    .to_owned(),
            )),
        };
        let http = reqwest::Client::builder()
            .timeout(REQUEST_TIMEOUT)
            .connect_timeout(CONNECT_TIMEOUT)
            .build()
            .map_err(|e| CliError::Other(format!("cannot build the HTTP client: {e}")))?;
        Ok(Self {
            http,
            base: admin_url.trim_end_matches('/').to_owned(),
            token,
        })
    }

    /// The full URL of an `/api/v1` path (`path` starts with `/`).
    pub fn url(&self, path: &str) -> String {
        format!("{}/api/v1{}", self.base, path)
    }

    /// `GET /api/v1{path}`.
    pub async fn get(&self, path: &str) -> Result<Answer, CliError> {
        self.send(Method::GET, path, None).await
    }

    /// `POST /api/v1{path}` with an optional JSON body.
    pub async fn post(&self, path: &str, body: Option<&Value>) -> Result<Answer, CliError> {
        self.send(Method::POST, path, body).await
    }

    /// `PUT /api/v1{path}` with a JSON body.
    pub async fn put(&self, path: &str, body: &Value) -> Result<Answer, CliError> {
        self.send(Method::PUT, path, Some(body)).await
    }

    /// `DELETE /api/v1{path}`.
    pub async fn delete(&self, path: &str) -> Result<Answer, CliError> {
        self.send(Method::DELETE, path, None).await
    }

    /// `GET /api/v1{path}` asking for the media type `accept` (e.g. `application/yaml`).
    pub async fn get_as(&self, path: &str, accept: &str) -> Result<Answer, CliError> {
        self.request(Method::GET, path, accept, Body::None).await
    }

    /// `PUT /api/v1{path}` with `body` sent as it is, of media type `content_type`.
    pub async fn put_raw(
        &self,
        path: &str,
        content_type: &str,
        body: Vec<u8>,
    ) -> Result<Answer, CliError> {
        let body = Body::Raw(content_type, body);
        self.request(Method::PUT, path, "application/json", body)
            .await
    }

    async fn send(
        &self,
        method: Method,
        path: &str,
        body: Option<&Value>,
    ) -> Result<Answer, CliError> {
        let body = body.map_or(Body::None, Body::Json);
        self.request(method, path, "application/json", body).await
    }

    async fn request(
        &self,
        method: Method,
        path: &str,
        accept: &str,
        body: Body<'_>,
    ) -> Result<Answer, CliError> {
        let url = self.url(path);
        let mut req = self
            .http
            .request(method, &url)
            .bearer_auth(&self.token)
            .header(reqwest::header::ACCEPT, accept);
        req = match body {
            Body::None => req,
            Body::Json(b) => req.json(b),
            Body::Raw(content_type, bytes) => req
                .header(reqwest::header::CONTENT_TYPE, content_type)
                .body(bytes),
        };
        let resp = req.send().await.map_err(|e| transport_error(&url, &e))?;
        let status = resp.status();
        let text = resp.text().await.map_err(|e| transport_error(&url, &e))?;
        if status.is_success() {
            return Ok(Answer {
                status: status.as_u16(),
                body: text,
            });
        }
        Err(api_error(status, &url, &text))
    }
}

/// A request body: none, a JSON value, or bytes of a given media type.
enum Body<'a> {
    None,
    Json(&'a Value),
    Raw(&'a str, Vec<u8>),
}

/// Maps an error answer to [`CliError::Api`] when it has the SPEC §8 shape.
fn api_error(status: StatusCode, url: &str, body: &str) -> CliError {
    let parsed: Option<Value> = serde_json::from_str(body).ok();
    let err = parsed.as_ref().and_then(|v| v.get("error"));
    let code = err.and_then(|e| e.get("code")).and_then(Value::as_str);
    let message = err.and_then(|e| e.get("message")).and_then(Value::as_str);
    match (code, message) {
        (Some(code), Some(message)) => CliError::Api {
            status: status.as_u16(),
            code: code.to_owned(),
            message: message.to_owned(),
        },
        _ => CliError::Unexpected {
            status: status.to_string(),
            url: url.to_owned(),
            body: body.trim().chars().take(200).collect(),
        },
    }
}

/// Describes a transport failure by its innermost cause (e.g. `Connection refused`), which
/// says more than reqwest's outer "error sending request".
fn transport_error(url: &str, e: &reqwest::Error) -> CliError {
    let mut cause: &dyn std::error::Error = e;
    while let Some(next) = cause.source() {
        cause = next;
    }
    let reason = if e.is_timeout() {
        format!("no answer within {} s", REQUEST_TIMEOUT.as_secs())
    } else if e.is_connect() {
        format!("{cause} (is the node running? set the URL with --admin or CERTGATE_ADMIN_URL)")
    } else {
        cause.to_string()
    };
    CliError::Connect {
        url: url.to_owned(),
        reason,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn api_error_shape_is_printed_as_specified() {
        let e = api_error(
            StatusCode::CONFLICT,
            "http://x/api/v1/gateway/trusted-certificates",
            r#"{"error":{"code":"ssl_disabled","message":"Certificates can be added only when SSL is enabled."}}"#,
        );
        assert_eq!(
            e.to_string(),
            "Certificates can be added only when SSL is enabled. (ssl_disabled, HTTP 409)"
        );
        assert_eq!(e.exit_code(), 1);
    }

    #[test]
    fn other_error_bodies_name_status_and_url() {
        let e = api_error(StatusCode::NOT_FOUND, "http://x/api/v1/nope", "");
        assert_eq!(
            e.to_string(),
            "the admin API answered HTTP 404 Not Found to http://x/api/v1/nope"
        );
    }

    #[test]
    fn missing_token_is_an_input_error() {
        for t in [None, Some(""), Some("  ")] {
            let e = AdminClient::new("http://127.0.0.1:9090", t).unwrap_err();
            assert_eq!(e.exit_code(), 2);
            assert!(e.to_string().contains("--token"), "{e}");
            assert!(e.to_string().contains("CERTGATE_ADMIN_TOKEN"), "{e}");
        }
    }

    #[test]
    fn bad_url_is_an_input_error() {
        let e = AdminClient::new("not a url", Some("t")).unwrap_err();
        assert_eq!(e.exit_code(), 2);
        let e = AdminClient::new("ftp://host", Some("t")).unwrap_err();
        assert_eq!(e.exit_code(), 2);
    }

    #[test]
    fn url_joins_without_double_slash() {
        let c = AdminClient::new("http://127.0.0.1:9090/", Some("t")).unwrap();
        assert_eq!(
            c.url("/gateway"),
            "http://127.0.0.1:9090/api/v1/gateway".to_owned()
        );
    }
}
