//! What this build is: the crate version, the git commit it was built from
//! (`-dirty` when the tree had uncommitted changes), the build date and the
//! target triple, stamped by `build.rs`. `qu --version`, `qu status` and
//! `qu node list` all show `LONG`, so an operator sees a mixed-version
//! cluster at once.

/// `0.1.0 (a1b2c3d 2026-12-05 x86_64-unknown-linux-musl)`.
pub const LONG: &str = concat!(
    env!("CARGO_PKG_VERSION"),
    " (",
    env!("QU_GIT_COMMIT"),
    " ",
    env!("QU_BUILD_DATE"),
    " ",
    env!("QU_BUILD_TARGET"),
    ")"
);

#[cfg(test)]
mod tests {
    #[test]
    fn long_version_names_version_commit_date_and_target() {
        let (version, rest) = super::LONG.split_once(" (").unwrap();
        assert_eq!(version, env!("CARGO_PKG_VERSION"));
        let inner = rest.strip_suffix(')').unwrap();
        let parts: Vec<&str> = inner.split(' ').collect();
        assert_eq!(parts.len(), 3, "{}", super::LONG);
        let commit = parts[0].trim_end_matches("-dirty");
        assert!(
            commit == "unknown"
                || (commit.len() >= 7 && commit.chars().all(|c| c.is_ascii_hexdigit())),
            "{}",
            super::LONG
        );
        let date: Vec<&str> = parts[1].split('-').collect();
        assert_eq!(date.len(), 3, "{}", super::LONG);
        assert!(date[0].len() == 4 && date[1].len() == 2 && date[2].len() == 2);
        assert!(parts[2].contains("linux"), "{}", super::LONG);
    }
}
