//! Stamps the binary with what `qu --version` reports: the git commit
//! (short hash, `-dirty` when the work tree differs from it), the build
//! date (UTC; `SOURCE_DATE_EPOCH` when set, for reproducible builds) and
//! the target triple. Outside a git checkout the commit reads `unknown`.

use std::process::Command;
use std::time::{SystemTime, UNIX_EPOCH};

fn main() {
    let commit = git(&["rev-parse", "--short=7", "HEAD"]).map(|hash| {
        // `git status` compares contents, so a touched but unchanged file
        // is not dirty; without optional locks it never rewrites the index
        // (which would re-run this script on the next build).
        let dirty = git(&[
            "--no-optional-locks",
            "status",
            "--porcelain",
            "--untracked-files=no",
        ])
        .is_some_and(|s| !s.is_empty());
        if dirty {
            format!("{hash}-dirty")
        } else {
            hash
        }
    });
    println!(
        "cargo:rustc-env=QU_GIT_COMMIT={}",
        commit.as_deref().unwrap_or("unknown")
    );
    println!("cargo:rustc-env=QU_BUILD_DATE={}", build_date());
    println!(
        "cargo:rustc-env=QU_BUILD_TARGET={}",
        std::env::var("TARGET").unwrap_or_else(|_| "unknown".into())
    );

    // Re-run when the commit or the sources change (the default, with no
    // rerun-if line, would miss a commit: it changes no source file).
    println!("cargo:rerun-if-env-changed=SOURCE_DATE_EPOCH");
    for path in ["build.rs", "src", "raft/src"] {
        println!("cargo:rerun-if-changed={path}");
    }
    let mut git_files = vec!["HEAD".to_string(), "index".to_string()];
    if let Some(head_ref) = git(&["symbolic-ref", "-q", "HEAD"]) {
        git_files.push(head_ref);
        git_files.push("packed-refs".to_string());
    }
    for rel in &git_files {
        // Only files that exist: cargo counts a missing one as changed on
        // every build (packed-refs often does not exist; a loose ref that
        // gets packed is deleted, which counts as a change).
        if let Some(p) = git(&["rev-parse", "--git-path", rel]) {
            if std::path::Path::new(&p).exists() {
                println!("cargo:rerun-if-changed={p}");
            }
        }
    }
}

/// The trimmed stdout of a successful `git ARGS`.
fn git(args: &[&str]) -> Option<String> {
    let out = Command::new("git").args(args).output().ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).trim().to_string())
}

/// `YYYY-MM-DD` (UTC) of `SOURCE_DATE_EPOCH`, else of now.
fn build_date() -> String {
    let secs = std::env::var("SOURCE_DATE_EPOCH")
        .ok()
        .and_then(|s| s.trim().parse::<u64>().ok())
        .unwrap_or_else(|| {
            SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map(|d| d.as_secs())
                .unwrap_or(0)
        });
    let (y, m, d) = civil_from_days((secs / 86_400) as i64);
    format!("{y:04}-{m:02}-{d:02}")
}

/// Days since 1970-01-01 to a proleptic Gregorian date (Howard Hinnant's
/// `civil_from_days`).
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}
