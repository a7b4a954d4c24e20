//! Exclude patterns: paths a checkpoint neither stores nor a restore touches (caches).

use globset::{GlobBuilder, GlobSet, GlobSetBuilder};

use crate::error::{CheckpointError, Result};

/// Glob patterns matched against paths relative to the workspace, with `/` separators.
///
/// `*` and `?` stay within one path component and `**` spans any number of them. A pattern
/// without a `/` matches a name at any depth (`*.pyc`, `__pycache__`), like a `.gitignore`
/// line; one with a `/` matches from the workspace root (`node_modules/.cache`, or
/// `**/node_modules/.cache` for any depth). An excluded directory is not entered.
#[derive(Debug, Clone)]
pub(crate) struct Excludes {
    set: GlobSet,
    empty: bool,
}

impl Excludes {
    pub(crate) fn new(patterns: &[String]) -> Result<Self> {
        let mut builder = GlobSetBuilder::new();
        for pattern in patterns {
            let trimmed = pattern.trim_start_matches('/').trim_end_matches('/');
            if trimmed.is_empty() {
                return Err(CheckpointError::InvalidExclude {
                    pattern: pattern.clone(),
                    reason: "the pattern is empty".into(),
                });
            }
            let anchored =
                if trimmed.contains('/') { trimmed.to_string() } else { format!("**/{trimmed}") };
            let glob = GlobBuilder::new(&anchored)
                .literal_separator(true)
                .backslash_escape(true)
                .build()
                .map_err(|e| CheckpointError::InvalidExclude {
                    pattern: pattern.clone(),
                    reason: e.kind().to_string(),
                })?;
            builder.add(glob);
        }
        let set = builder.build().map_err(|e| CheckpointError::InvalidExclude {
            pattern: patterns.join(", "),
            reason: e.to_string(),
        })?;
        Ok(Excludes { set, empty: patterns.is_empty() })
    }

    /// Whether the workspace-relative path `rel` (bytes, `/`-separated) is excluded.
    pub(crate) fn is_excluded(&self, rel: &[u8]) -> bool {
        if self.empty {
            return false;
        }
        use std::os::unix::ffi::OsStrExt;
        self.set.is_match(std::path::Path::new(std::ffi::OsStr::from_bytes(rel)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn excludes(patterns: &[&str]) -> Excludes {
        Excludes::new(&patterns.iter().map(|p| p.to_string()).collect::<Vec<_>>()).unwrap()
    }

    #[test]
    fn anchored_and_floating_patterns() {
        let ex = excludes(&["node_modules/.cache", "*.pyc", "**/target/debug", "__pycache__/"]);
        assert!(ex.is_excluded(b"node_modules/.cache"));
        assert!(!ex.is_excluded(b"app/node_modules/.cache"));
        assert!(!ex.is_excluded(b"node_modules/.cachex"));
        assert!(!ex.is_excluded(b"node_modules"));
        assert!(ex.is_excluded(b"a.pyc"));
        assert!(ex.is_excluded(b"deep/er/b.pyc"));
        assert!(!ex.is_excluded(b"a.py"));
        assert!(ex.is_excluded(b"target/debug"));
        assert!(ex.is_excluded(b"x/y/target/debug"));
        assert!(ex.is_excluded(b"src/__pycache__"));
        assert!(!excludes(&["a/*"]).is_excluded(b"a/b/c"));
        assert!(!excludes(&[]).is_excluded(b"anything"));
    }

    #[test]
    fn bad_patterns_are_refused() {
        assert!(Excludes::new(&["a[".to_string()]).is_err());
        assert!(Excludes::new(&["/".to_string()]).is_err());
    }
}
