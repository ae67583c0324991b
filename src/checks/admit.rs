//! Entry rules for check input that need a parser the replicated state
//! does not carry: regular expressions, JSONPath, PEM. Run where a request
//! enters (`qu check add|edit|test`), never in `apply`, so a log entry is
//! judged the same by every release.
//!
//! Invariant: what passes here also compiles in the prober (the same
//! crates parse it), so a stored check never fails for its own syntax.

use qu_raft::model::{admit_url, CheckKind, ValidationError};

/// The entry rules of a check of this kind, as given or as an edit makes it.
pub fn admit_kind(kind: &CheckKind) -> Result<(), ValidationError> {
    match kind {
        CheckKind::Http(h) => {
            admit_url("url", &h.url)?;
            if h.regex {
                for (field, pattern) in [
                    ("--body-match", &h.body_match),
                    ("--body-not-match", &h.body_not_match),
                ] {
                    if let Some(p) = pattern {
                        regex::Regex::new(p).map_err(|e| {
                            ValidationError::new(
                                field,
                                format!("{p:?} is not a valid regular expression: {e}"),
                            )
                        })?;
                    }
                }
            }
            if let Some(path) = &h.json_path {
                admit_json_path(path)?;
            }
        }
        CheckKind::Tls(t) => {
            if let Some(ca) = &t.ca {
                crate::checks::probe::tls::parse_ca_pem(ca)
                    .map_err(|e| ValidationError::new("--ca", e))?;
            }
        }
        CheckKind::Tcp { .. } | CheckKind::Icmp { .. } | CheckKind::Dns(_) => {}
    }
    Ok(())
}

/// `$.a.b` (JSONPath, RFC 9535) or `/a/b` (JSON Pointer, RFC 6901).
fn admit_json_path(path: &str) -> Result<(), ValidationError> {
    if path.starts_with('/') {
        return Ok(());
    }
    if !path.starts_with('$') {
        return Err(ValidationError::new(
            "--json-path",
            format!("{path:?} is neither a JSONPath (starting with $, e.g. $.status) nor a JSON Pointer (starting with /, e.g. /status)"),
        ));
    }
    serde_json_path::JsonPath::parse(path)
        .map(|_| ())
        .map_err(|e| {
            ValidationError::new(
                "--json-path",
                format!("{path:?} is not a valid JSONPath: {e}"),
            )
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use qu_raft::model::HttpCheck;

    fn http(f: impl FnOnce(&mut HttpCheck)) -> CheckKind {
        let mut h = HttpCheck {
            url: "https://example.com/".into(),
            ..HttpCheck::default()
        };
        f(&mut h);
        CheckKind::Http(Box::new(h))
    }

    #[test]
    fn bad_patterns_are_refused_by_field() {
        let k = http(|h| {
            h.regex = true;
            h.body_not_match = Some("(unclosed".into());
        });
        assert_eq!(admit_kind(&k).unwrap_err().field, "--body-not-match");
        // Without --regex the same text is a plain substring.
        let k = http(|h| h.body_not_match = Some("(unclosed".into()));
        assert!(admit_kind(&k).is_ok());
        let k = http(|h| h.json_path = Some("$.items[".into()));
        assert_eq!(admit_kind(&k).unwrap_err().field, "--json-path");
        let k = http(|h| h.json_path = Some("status".into()));
        assert!(admit_kind(&k).unwrap_err().message.contains("JSON Pointer"));
        for ok in ["$.status", "$.items[*].up", "/status/0"] {
            let k = http(|h| h.json_path = Some(ok.into()));
            assert!(admit_kind(&k).is_ok(), "{ok}");
        }
        let k = http(|h| h.url = "http:/x".into());
        assert_eq!(admit_kind(&k).unwrap_err().field, "url");
    }
}
