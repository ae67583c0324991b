//! Errors as one line that keeps every cause: `outer: inner: innermost`.
//!
//! Library errors carry their causes as `source()` (thiserror `#[source]`
//! / `#[from]`); the edges that print or send an error as text (the CLI,
//! the control socket, RPC refusals, delivery reasons) walk the chain here
//! instead of calling `to_string`, so a refused connection or a DNS failure
//! underneath is never lost.

/// An error and all its causes, without repeating a cause an outer message
/// already contains.
pub fn chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut cause = e.source();
    while let Some(c) = cause {
        let text = c.to_string();
        if !text.is_empty() && !out.contains(&text) {
            out.push_str(": ");
            out.push_str(&text);
        }
        cause = c.source();
    }
    out
}

#[cfg(test)]
mod tests {
    use super::chain;

    #[derive(Debug, thiserror::Error)]
    #[error("cannot reach the daemon")]
    struct Outer(#[source] std::io::Error);

    #[derive(Debug, thiserror::Error)]
    #[error("cannot read x: {0}")]
    struct Repeats(#[source] std::io::Error);

    #[test]
    fn every_cause_is_named_once() {
        let io = || std::io::Error::from(std::io::ErrorKind::PermissionDenied);
        assert_eq!(
            chain(&Outer(io())),
            format!("cannot reach the daemon: {}", io())
        );
        // A cause the message already shows is not repeated.
        assert_eq!(chain(&Repeats(io())), format!("cannot read x: {}", io()));
    }
}
