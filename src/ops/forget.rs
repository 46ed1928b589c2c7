//! `snap forget`: choose which snapshots to keep by a retention policy, and remove the rest.
//!
//! Snapshots are grouped (by host and paths unless told otherwise); each group is judged on its
//! own, newest first. A snapshot is kept if any rule keeps it, and the newest snapshot of every
//! group is always kept. Removing a snapshot deletes only its snapshot file; the data it alone
//! used is freed by `prune`.

use std::collections::BTreeMap;

use chrono::{DateTime, Datelike, Duration, Utc};
use serde::Serialize;

use crate::error::{Error, Result};
use crate::format::snapshot::Snapshot;
use crate::id::Id;
use crate::repo::Repository;
use crate::store::FileKind;

#[derive(Debug, Clone, Default)]
pub struct Policy {
    pub keep_last: Option<usize>,
    pub keep_hourly: Option<usize>,
    pub keep_daily: Option<usize>,
    pub keep_weekly: Option<usize>,
    pub keep_monthly: Option<usize>,
    pub keep_yearly: Option<usize>,
    pub keep_within: Option<Duration>,
    pub keep_tags: Vec<String>,
}

impl Policy {
    pub fn is_empty(&self) -> bool {
        self.keep_last.is_none()
            && self.keep_hourly.is_none()
            && self.keep_daily.is_none()
            && self.keep_weekly.is_none()
            && self.keep_monthly.is_none()
            && self.keep_yearly.is_none()
            && self.keep_within.is_none()
            && self.keep_tags.is_empty()
    }
}

/// What snapshots are grouped by.
#[derive(Debug, Clone, Copy)]
pub struct GroupBy {
    pub host: bool,
    pub paths: bool,
    pub tags: bool,
}

impl Default for GroupBy {
    fn default() -> Self {
        GroupBy { host: true, paths: true, tags: false }
    }
}

impl GroupBy {
    /// Parses `host,paths,tags` (any subset; empty means one group).
    pub fn parse(s: &str) -> Result<GroupBy> {
        let mut g = GroupBy { host: false, paths: false, tags: false };
        for part in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            match part {
                "host" => g.host = true,
                "paths" => g.paths = true,
                "tags" => g.tags = true,
                other => {
                    return Err(Error::InvalidArgument(format!(
                        "--group-by takes host, paths and tags, not {other:?}"
                    )));
                }
            }
        }
        Ok(g)
    }

    fn key(&self, s: &Snapshot) -> String {
        let mut parts = Vec::new();
        if self.host {
            parts.push(format!("host {}", s.hostname));
        }
        if self.paths {
            let mut p = s.paths.clone();
            p.sort();
            parts.push(format!("paths {}", p.join(" ")));
        }
        if self.tags {
            let mut t = s.tags.clone();
            t.sort();
            parts.push(format!("tags {}", t.join(",")));
        }
        parts.join(", ")
    }
}

/// Parses durations like `30d`, `12h`, `2w`, `6m` (30 days), `1y` (365 days), `1y6m`.
pub fn parse_duration(s: &str) -> Result<Duration> {
    let bad = || Error::InvalidArgument(format!("{s:?} is not a duration like 30d, 12h, 2w, 6m or 1y"));
    let mut total = Duration::zero();
    let mut number = String::new();
    for c in s.chars() {
        if c.is_ascii_digit() {
            number.push(c);
            continue;
        }
        let n: i64 = number.parse().map_err(|_| bad())?;
        number.clear();
        let unit = match c {
            'h' => Duration::try_hours(n),
            'd' => Duration::try_days(n),
            'w' => Duration::try_weeks(n),
            'm' => Duration::try_days(n.checked_mul(30).ok_or_else(bad)?),
            'y' => Duration::try_days(n.checked_mul(365).ok_or_else(bad)?),
            _ => None,
        };
        total = total.checked_add(&unit.ok_or_else(bad)?).ok_or_else(bad)?;
    }
    if !number.is_empty() || total.is_zero() {
        return Err(bad());
    }
    Ok(total)
}

#[derive(Debug, Clone, Serialize)]
pub struct Decision {
    pub id: Id,
    pub time: String,
    pub keep: bool,
    /// Why it is kept (empty when it is removed).
    pub reasons: Vec<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Group {
    pub key: String,
    pub snapshots: Vec<Decision>,
}

/// A snapshot of a group, with its parsed time.
type Member<'a> = (Id, &'a Snapshot, DateTime<Utc>);

/// Applies `policy` to every group. Pure: decides, removes nothing.
pub fn plan(snapshots: &[(Id, Snapshot)], policy: &Policy, group_by: GroupBy) -> Result<Vec<Group>> {
    if policy.is_empty() {
        return Err(Error::InvalidArgument("no --keep-* rule given: refusing to remove every snapshot".into()));
    }
    let mut groups: BTreeMap<String, Vec<Member>> = BTreeMap::new();
    for (id, s) in snapshots {
        let time = s.timestamp().unwrap_or_default();
        groups.entry(group_by.key(s)).or_default().push((*id, s, time));
    }
    let mut out = Vec::new();
    for (key, mut members) in groups {
        members.sort_by(|a, b| b.2.cmp(&a.2).then(b.0.cmp(&a.0)));
        out.push(Group { key, snapshots: decide(&members, policy) });
    }
    Ok(out)
}

type Bucket = fn(&DateTime<Utc>) -> String;

fn decide(members: &[Member], policy: &Policy) -> Vec<Decision> {
    let mut reasons: Vec<Vec<String>> = vec![Vec::new(); members.len()];
    if let Some(n) = policy.keep_last {
        for r in reasons.iter_mut().take(n) {
            r.push("last".into());
        }
    }
    let buckets: [(&str, Option<usize>, Bucket); 5] = [
        ("hourly", policy.keep_hourly, |t| t.format("%Y-%m-%d %H").to_string()),
        ("daily", policy.keep_daily, |t| t.format("%Y-%m-%d").to_string()),
        ("weekly", policy.keep_weekly, |t| format!("{}-W{}", t.iso_week().year(), t.iso_week().week())),
        ("monthly", policy.keep_monthly, |t| t.format("%Y-%m").to_string()),
        ("yearly", policy.keep_yearly, |t| t.format("%Y").to_string()),
    ];
    for (name, count, bucket) in buckets {
        let Some(count) = count else { continue };
        let mut kept = 0;
        let mut last: Option<String> = None;
        for (i, (_, _, time)) in members.iter().enumerate() {
            let b = bucket(time);
            if kept < count && last.as_ref() != Some(&b) {
                reasons[i].push(format!("{name} ({b})"));
                kept += 1;
            }
            last = Some(b);
        }
    }
    if let (Some(within), Some((_, _, newest))) = (policy.keep_within, members.first()) {
        for (i, (_, _, time)) in members.iter().enumerate() {
            if *newest - *time <= within {
                reasons[i].push("within".into());
            }
        }
    }
    for (i, (_, s, _)) in members.iter().enumerate() {
        if let Some(tag) = s.tags.iter().find(|t| policy.keep_tags.contains(t)) {
            reasons[i].push(format!("tag {tag}"));
        }
    }
    if let Some(first) = reasons.first_mut()
        && first.is_empty()
    {
        first.push("newest of its group".into());
    }
    members
        .iter()
        .zip(reasons)
        .map(|((id, s, _), reasons)| Decision { id: *id, time: s.time.clone(), keep: !reasons.is_empty(), reasons })
        .collect()
}

/// Removes the snapshots the plan does not keep; returns how many were removed.
pub fn remove(repo: &Repository, groups: &[Group]) -> Result<usize> {
    if repo.config().append_only {
        return Err(Error::AppendOnly("forget"));
    }
    let mut removed = 0;
    for d in groups.iter().flat_map(|g| &g.snapshots).filter(|d| !d.keep) {
        repo.backend().remove(FileKind::Snapshot, &d.id.to_hex())?;
        removed += 1;
    }
    Ok(removed)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::format::snapshot::Summary;

    fn snap(day: u32, hour: u32, host: &str, tags: &[&str]) -> (Id, Snapshot) {
        let time = format!("2026-{:02}-{:02}T{hour:02}:00:00Z", (day - 1) / 28 + 1, (day - 1) % 28 + 1);
        let s = Snapshot {
            time: time.clone(),
            hostname: host.into(),
            username: String::new(),
            paths: vec!["/phone".into()],
            tags: tags.iter().map(|t| t.to_string()).collect(),
            tree: Id::default(),
            parent: None,
            program: String::new(),
            summary: Summary::default(),
            skipped: Vec::new(),
        };
        (Id::of_bytes(time.as_bytes()), s)
    }

    fn kept(groups: &[Group]) -> usize {
        groups.iter().flat_map(|g| &g.snapshots).filter(|d| d.keep).count()
    }

    #[test]
    fn daily_keeps_one_per_day_newest_first() {
        let snaps: Vec<_> = (1..=10).flat_map(|d| [snap(d, 9, "a", &[]), snap(d, 18, "a", &[])]).collect();
        let g = plan(&snaps, &Policy { keep_daily: Some(3), ..Default::default() }, GroupBy::default()).unwrap();
        assert_eq!(kept(&g), 3);
        let kept_times: Vec<_> = g[0].snapshots.iter().filter(|d| d.keep).map(|d| d.time.clone()).collect();
        assert!(kept_times.iter().all(|t| t.contains("T18:")), "the last snapshot of each day: {kept_times:?}");
    }

    #[test]
    fn groups_are_separate_and_newest_is_always_kept() {
        let snaps = vec![snap(1, 1, "a", &[]), snap(2, 1, "a", &[]), snap(1, 1, "b", &["keep"])];
        let g = plan(&snaps, &Policy { keep_tags: vec!["nothing".into()], ..Default::default() }, GroupBy::default())
            .unwrap();
        assert_eq!(g.len(), 2);
        assert_eq!(kept(&g), 2, "each group's newest survives even when no rule keeps it");
        let g =
            plan(&snaps, &Policy { keep_tags: vec!["keep".into()], ..Default::default() }, GroupBy::parse("").unwrap())
                .unwrap();
        assert_eq!(g.len(), 1);
        assert_eq!(kept(&g), 2, "the newest and the tagged one");
    }

    #[test]
    fn within_monthly_and_empty_policy() {
        let snaps: Vec<_> = (1..=84).map(|d| snap(d, 12, "a", &[])).collect();
        let within = plan(
            &snaps,
            &Policy { keep_within: Some(parse_duration("1w").unwrap()), ..Default::default() },
            GroupBy::default(),
        )
        .unwrap();
        assert_eq!(kept(&within), 8, "the newest and the 7 days before it");
        let monthly =
            plan(&snaps, &Policy { keep_monthly: Some(2), ..Default::default() }, GroupBy::default()).unwrap();
        assert_eq!(kept(&monthly), 2);
        assert!(plan(&snaps, &Policy::default(), GroupBy::default()).is_err());
        assert!(parse_duration("30x").is_err() && parse_duration("").is_err() && parse_duration("5").is_err());
        assert_eq!(parse_duration("1y6m").unwrap(), Duration::days(545));
    }
}
