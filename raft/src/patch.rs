//! Partial edits of a check or an alert (`qu check edit`, `qu alert edit`):
//! a set of fields, in the record's own JSON names, laid over the stored
//! record.
//!
//! Invariants: applying a patch is a pure function of (record, patch), so
//! every node reaches the same record; a field that is fixed (`id`, `type`,
//! and for checks `paused`, which has its own command) or that the record's
//! kind does not have is refused by name, never silently dropped; `null`
//! clears an optional field. A patch's `Debug` lists its field names only
//! (values may be secrets).

use serde::{de::DeserializeOwned, Deserialize, Serialize};

use crate::model::ValidationError;

/// Fields to change, by their JSON name; `null` clears one.
#[derive(Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Patch(pub serde_json::Map<String, serde_json::Value>);

impl std::fmt::Debug for Patch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_set().entries(self.0.keys()).finish()
    }
}

impl Patch {
    /// Sets `field` to `value`.
    pub fn set(&mut self, field: &str, value: impl Serialize) -> &mut Self {
        let v = serde_json::to_value(value).unwrap_or(serde_json::Value::Null);
        self.0.insert(field.to_string(), v);
        self
    }

    /// Sets `field` to `value` when there is one.
    pub fn set_some(&mut self, field: &str, value: Option<impl Serialize>) -> &mut Self {
        if let Some(v) = value {
            self.set(field, v);
        }
        self
    }

    /// Clears the optional `field`.
    pub fn clear(&mut self, field: &str) -> &mut Self {
        self.0.insert(field.to_string(), serde_json::Value::Null);
        self
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn contains(&self, field: &str) -> bool {
        self.0.contains_key(field)
    }

    /// The field names, for summaries ("changed interval_ms, timeout_ms").
    pub fn fields(&self) -> Vec<&str> {
        self.0.keys().map(String::as_str).collect()
    }
}

/// `record` with `patch` laid over it. `what` names the record's kind in
/// messages ("http check"); `fixed` are fields no patch may touch.
pub fn patched<T: Serialize + DeserializeOwned>(
    record: &T,
    patch: &Patch,
    what: &str,
    fixed: &[&str],
) -> Result<T, ValidationError> {
    if patch.is_empty() {
        return Err(ValidationError::new(
            "edit",
            "nothing to change: give at least one field to edit (see --help)",
        ));
    }
    let serde_json::Value::Object(mut fields) = serde_json::to_value(record)
        .map_err(|e| ValidationError::new("edit", format!("cannot read the record: {e}")))?
    else {
        return Err(ValidationError::new("edit", "the record is not an object"));
    };
    for (key, value) in &patch.0 {
        if fixed.contains(&key.as_str()) {
            return Err(ValidationError::new(
                &flag(key),
                format!("cannot be edited; remove the {what} and add it again"),
            ));
        }
        if value.is_null() {
            fields.remove(key);
        } else {
            fields.insert(key.clone(), value.clone());
        }
    }
    let out: T = serde_json::from_value(serde_json::Value::Object(fields))
        .map_err(|e| ValidationError::new("edit", format!("the edit does not fit: {e}")))?;
    // A field the kind does not have would deserialize and vanish: refuse.
    let serde_json::Value::Object(back) = serde_json::to_value(&out)
        .map_err(|e| ValidationError::new("edit", format!("cannot write the record: {e}")))?
    else {
        return Err(ValidationError::new("edit", "the record is not an object"));
    };
    for (key, value) in &patch.0 {
        let kept = match back.get(key) {
            Some(v) => !value.is_null() || v.is_null(),
            None => value.is_null() || is_default_value(value),
        };
        if !kept {
            return Err(ValidationError::new(
                &flag(key),
                format!("a {what} has no such field"),
            ));
        }
    }
    Ok(out)
}

/// The command-line flag of a field (`interval_ms` is `--interval`), as
/// refusals name it.
pub fn flag(field: &str) -> String {
    format!("--{}", field.trim_end_matches("_ms").replace('_', "-"))
}

/// Values a field skipped when default (false, empty) serializes to
/// nothing: setting one is a valid edit, not an unknown field.
fn is_default_value(v: &serde_json::Value) -> bool {
    match v {
        serde_json::Value::Bool(b) => !b,
        serde_json::Value::String(s) => s.is_empty(),
        serde_json::Value::Array(a) => a.is_empty(),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Check, CheckKind, HttpCheck, StatusExpect};

    fn http() -> Check {
        Check {
            id: "c1".into(),
            name: "web".into(),
            kind: CheckKind::Http(Box::new(HttpCheck {
                url: "https://example.com/".into(),
                expect: Some(StatusExpect::code(201)),
                body_match: None,
                insecure: false,
                ..HttpCheck::default()
            })),
            interval_ms: 30_000,
            timeout_ms: 10_000,
            alerts: vec!["a1".into()],
            paused: false,
        }
    }

    const FIXED: &[&str] = &["id", "type", "paused"];

    #[test]
    fn only_the_given_fields_change_and_null_clears() {
        let mut p = Patch::default();
        p.set("interval_ms", 5_000u64).clear("expect");
        let c = patched(&http(), &p, "http check", FIXED).unwrap();
        assert_eq!(c.interval_ms, 5_000);
        assert_eq!(c.timeout_ms, 10_000);
        assert_eq!(c.name, "web");
        assert_eq!(c.alerts, vec!["a1".to_string()]);
        match c.kind {
            CheckKind::Http(h) => {
                let HttpCheck {
                    url,
                    expect,
                    insecure,
                    ..
                } = *h;
                assert_eq!(url, "https://example.com/");
                assert_eq!(expect, None);
                assert!(!insecure);
            }
            other => panic!("kind changed: {other:?}"),
        }
        let mut p = Patch::default();
        p.set("insecure", false).set("alerts", Vec::<String>::new());
        let c = patched(&http(), &p, "http check", FIXED).unwrap();
        assert!(c.alerts.is_empty());
    }

    #[test]
    fn fixed_unknown_and_mistyped_fields_are_refused_by_name() {
        let mut p = Patch::default();
        p.set("type", "tcp");
        assert_eq!(
            patched(&http(), &p, "http check", FIXED).unwrap_err().field,
            "--type"
        );
        let mut p = Patch::default();
        p.set("target", "db:5432");
        let e = patched(&http(), &p, "http check", FIXED).unwrap_err();
        assert_eq!(e.field, "--target");
        assert!(e.message.contains("http check has no such field"), "{e}");
        let mut p = Patch::default();
        p.set("interval_ms", "soon");
        assert!(patched(&http(), &p, "http check", FIXED).is_err());
        assert!(patched(&http(), &Patch::default(), "http check", FIXED).is_err());
    }

    #[test]
    fn debug_shows_field_names_not_values() {
        let mut p = Patch::default();
        p.set("password", "hunter2");
        let shown = format!("{p:?}");
        assert!(shown.contains("password") && !shown.contains("hunter2"));
    }
}
