//! Path patterns for `--include` and `--exclude`.
//!
//! Paths are relative to the snapshot root and use `/`. A pattern is a glob (`*` stays within
//! one component, `**` crosses components); a pattern without `/` also matches a single name
//! anywhere (`*.tmp`); a path matches when it or any of its ancestors does, so naming a folder
//! selects everything below it.

use globset::{GlobBuilder, GlobSet, GlobSetBuilder};

use crate::error::{Error, Result};

#[derive(Debug, Clone)]
pub struct PathFilter {
    paths: GlobSet,
    names: GlobSet,
    empty: bool,
}

fn build(patterns: &[&str]) -> Result<GlobSet> {
    let mut b = GlobSetBuilder::new();
    for p in patterns {
        let glob = GlobBuilder::new(p)
            .literal_separator(true)
            .backslash_escape(true)
            .build()
            .map_err(|e| Error::InvalidArgument(format!("bad pattern {p:?}: {e}")))?;
        b.add(glob);
    }
    b.build().map_err(|e| Error::InvalidArgument(format!("bad patterns: {e}")))
}

impl PathFilter {
    pub fn new(patterns: &[String]) -> Result<PathFilter> {
        let cleaned: Vec<String> = patterns
            .iter()
            .map(|p| p.trim_start_matches("./").trim_start_matches('/').trim_end_matches('/').to_string())
            .filter(|p| !p.is_empty())
            .collect();
        let names: Vec<&str> = cleaned.iter().map(String::as_str).filter(|p| !p.contains('/')).collect();
        let all: Vec<&str> = cleaned.iter().map(String::as_str).collect();
        Ok(PathFilter { paths: build(&all)?, names: build(&names)?, empty: cleaned.is_empty() })
    }

    pub fn is_empty(&self) -> bool {
        self.empty
    }

    /// True when `rel` or one of its ancestors matches a pattern.
    pub fn matches(&self, rel: &str) -> bool {
        if self.empty {
            return false;
        }
        let mut end = 0;
        for component in rel.split('/') {
            end += component.len();
            if self.paths.is_match(&rel[..end]) || self.names.is_match(component) {
                return true;
            }
            end += 1;
        }
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn f(p: &[&str]) -> PathFilter {
        PathFilter::new(&p.iter().map(|s| s.to_string()).collect::<Vec<_>>()).unwrap()
    }

    #[test]
    fn folder_selects_everything_below() {
        let filter = f(&["DCIM/Camera"]);
        assert!(filter.matches("DCIM/Camera"));
        assert!(filter.matches("DCIM/Camera/a.jpg"));
        assert!(!filter.matches("DCIM/CameraRoll/a.jpg"));
        assert!(!filter.matches("DCIM"));
    }

    #[test]
    fn globs_stay_in_one_component_and_names_match_anywhere() {
        let filter = f(&["DCIM/Camera/PXL_2024*.jpg", "*.tmp"]);
        assert!(filter.matches("DCIM/Camera/PXL_20240101.jpg"));
        assert!(!filter.matches("DCIM/Camera/sub/PXL_20240101.jpg"));
        assert!(filter.matches("a/b/c.tmp"));
        assert!(!f(&[]).matches("x"));
        assert!(PathFilter::new(&["a[".into()]).is_err());
    }
}
