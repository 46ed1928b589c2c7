//! One function per command: open the repository, call the library, print the result. The
//! shared context lives here; commands that change or mend a repository are in `maintenance`.

use anyhow::{Context, Result, anyhow, bail};
use indicatif::HumanBytes;
use serde_json::json;

use super::maintenance::{key, repair_index, repair_snapshots, run_forget, run_prune, unlock};
use super::password::{self, PasswordSource};
use super::progress::Bar;
use super::{Cli, Command, EncryptionChoice, KdfArgs, Outcome, RepairWhat};
use snap::crypto::keyfile::{Credential, KdfParams};
use snap::error::Error;
use snap::ops::{check, create, forget, inspect, prune, restore};
use snap::repo::{InitOptions, Repository};
use snap::store::{StoreOptions, open_backend};

pub(super) struct Context_ {
    pub(super) retry_lock: std::time::Duration,
    pub(super) repo: Option<String>,
    pub(super) store: StoreOptions,
    pub(super) password: PasswordSource,
    pub(super) json: bool,
    pub(super) quiet: bool,
}

impl Context_ {
    fn location(&self) -> Result<&str> {
        self.repo.as_deref().ok_or_else(|| anyhow!("no repository given: use --repo or set SNAP_REPOSITORY"))
    }

    pub(super) fn open(&self) -> Result<Repository> {
        self.open_with(&self.store)
    }

    /// Opens the repository itself, never a cached copy of its files (for `check`).
    pub(super) fn open_uncached(&self) -> Result<Repository> {
        self.open_with(&StoreOptions { cache_dir: None, ..self.store.clone() })
    }

    fn open_with(&self, store: &StoreOptions) -> Result<Repository> {
        let location = self.location()?;
        let backend = open_backend(location, store)?;
        let password = &self.password;
        let repo = Repository::open(backend, &mut || {
            password.existing().map_err(|e| Error::InvalidArgument(format!("{e:#}")))
        })?;
        Ok(repo)
    }

    pub(super) fn open_indexed(&self) -> Result<Repository> {
        let mut repo = self.open()?;
        let report = repo.load_index()?;
        for (name, e) in &report.damaged {
            if !self.quiet {
                eprintln!("warning: index file {name} is unreadable ({e}); run `snap check`");
            }
        }
        Ok(repo)
    }

    pub(super) fn bar(&self, verb: &str) -> Bar {
        Bar::new(verb, !self.quiet && !self.json, self.quiet)
    }
}

/// `$XDG_CACHE_HOME/snap`, else `~/.cache/snap`; none if neither is known.
fn default_cache_dir() -> Option<std::path::PathBuf> {
    let base =
        std::env::var_os("XDG_CACHE_HOME").filter(|v| !v.is_empty()).map(std::path::PathBuf::from).or_else(|| {
            std::env::var_os("HOME").filter(|v| !v.is_empty()).map(|h| std::path::PathBuf::from(h).join(".cache"))
        })?;
    Some(base.join("snap"))
}

pub(super) fn kdf(args: &KdfArgs) -> KdfParams {
    KdfParams { memory_kib: args.kdf_memory_kib, iterations: args.kdf_iterations, parallelism: 1 }
}

pub(super) fn print_json(value: &impl serde::Serialize) -> Result<()> {
    println!("{}", serde_json::to_string_pretty(value)?);
    Ok(())
}

pub fn run(cli: Cli) -> Result<Outcome> {
    let ctx = Context_ {
        retry_lock: std::time::Duration::from_secs(cli.retry_lock),
        repo: cli.repo,
        store: StoreOptions {
            s3: snap::store::s3::S3Options {
                region: cli.s3_region,
                virtual_host: cli.s3_virtual_host,
                credentials: None,
            },
            cache_dir: if cli.no_cache { None } else { cli.cache_dir.or_else(default_cache_dir) },
        },
        password: PasswordSource { file: cli.password_file, command: cli.password_command, key_file: cli.key_file },
        json: cli.json,
        quiet: cli.quiet,
    };
    match cli.command {
        Command::Init { encryption, append_only, kdf: k } => init(&ctx, encryption, append_only, &k),
        Command::Create { paths, exclude, tag, host, parent, compression } => {
            let options = create::CreateOptions {
                paths,
                excludes: exclude,
                tags: tag,
                hostname: host,
                parent,
                compression_level: compression,
                retry_lock: ctx.retry_lock,
            };
            create_snapshot(&ctx, &options)
        }
        Command::Snapshots => snapshots(&ctx),
        Command::Ls { snapshot, path } => ls(&ctx, &snapshot, path.as_deref().unwrap_or("")),
        Command::Restore { snapshot, target, include, exclude } => {
            let options =
                restore::RestoreOptions { target, includes: include, excludes: exclude, retry_lock: ctx.retry_lock };
            restore_snapshot(&ctx, &snapshot, &options)
        }
        Command::Check { read_data, read_data_subset } => run_check(&ctx, read_data, read_data_subset.as_deref()),
        Command::Diff { first, second } => diff(&ctx, &first, &second),
        Command::Stats { snapshot } => stats(&ctx, snapshot.as_deref()),
        Command::Key { action } => key(&ctx, action),
        Command::Forget {
            keep_last,
            keep_hourly,
            keep_daily,
            keep_weekly,
            keep_monthly,
            keep_yearly,
            keep_within,
            keep_tag,
            group_by,
            dry_run,
            prune,
        } => {
            let policy = forget::Policy {
                keep_last,
                keep_hourly,
                keep_daily,
                keep_weekly,
                keep_monthly,
                keep_yearly,
                keep_within: keep_within.as_deref().map(forget::parse_duration).transpose()?,
                keep_tags: keep_tag,
            };
            run_forget(&ctx, &policy, forget::GroupBy::parse(&group_by)?, dry_run, prune)
        }
        Command::Prune { dry_run, repack_threshold } => {
            if !(0.0..=100.0).contains(&repack_threshold) {
                bail!("--repack-threshold is a percentage from 0 to 100");
            }
            let options =
                prune::PruneOptions { repack_threshold: repack_threshold / 100.0, dry_run, retry_lock: ctx.retry_lock };
            run_prune(&ctx, &options)
        }
        Command::Repair { what: RepairWhat::Index { dry_run } } => repair_index(&ctx, dry_run),
        Command::Repair { what: RepairWhat::Snapshots { dry_run, read_data } } => {
            repair_snapshots(&ctx, dry_run, read_data)
        }
        Command::Unlock { all } => unlock(&ctx, all),
        Command::AppendOnly { mode } => {
            let mut repo = ctx.open()?;
            repo.set_append_only(mode == "on")?;
            if !ctx.quiet {
                println!("append-only mode is {mode}");
            }
            Ok(Outcome::Done)
        }
    }
}

fn init(ctx: &Context_, encryption: EncryptionChoice, append_only: bool, k: &KdfArgs) -> Result<Outcome> {
    let location = ctx.location()?;
    let backend = open_backend(location, &ctx.store)?;
    let encrypted = matches!(encryption, EncryptionChoice::Chacha20);
    let credential = match (&ctx.password.key_file, encrypted) {
        (_, false) => None,
        (Some(path), true) => {
            let (credential, created) = password::read_or_create_key_file(path)?;
            if created && !ctx.quiet && !ctx.json {
                println!("created key file {}: keep it safe, it opens the repository", path.display());
            }
            Some(credential)
        }
        (None, true) => Some(Credential::Password(ctx.password.new_password("New repository password")?)),
    };
    let repo = Repository::init(
        backend,
        credential.as_ref(),
        &InitOptions { encryption: encrypted, kdf: kdf(k), append_only },
    )
    .with_context(|| format!("cannot create a repository at {location}"))?;
    if ctx.json {
        print_json(&json!({ "id": repo.config().id, "location": location, "encrypted": encrypted }))?;
    } else if !ctx.quiet {
        println!(
            "created {} repository {} at {location}",
            if encrypted { "encrypted" } else { "unencrypted" },
            &repo.config().id[..8]
        );
        if encrypted {
            println!("keep the password safe: without it the data cannot be read");
        }
    }
    Ok(Outcome::Done)
}

fn create_snapshot(ctx: &Context_, options: &create::CreateOptions) -> Result<Outcome> {
    let mut repo = ctx.open_indexed()?;
    let bar = ctx.bar("backing up");
    let outcome = create::run(&mut repo, options, &bar);
    bar.finish();
    let outcome = outcome?;
    let s = &outcome.snapshot;
    let m = &s.summary;
    if ctx.json {
        print_json(&json!({ "id": outcome.id, "snapshot": s, "files_moved": outcome.files_moved }))?;
    } else if !ctx.quiet {
        println!("snapshot {} saved", outcome.id.short());
        println!(
            "files: {} new, {} changed, {} unchanged ({} recognised after a move or re-copy); {} folders",
            m.files_new, m.files_changed, m.files_unchanged, outcome.files_moved, m.dirs
        );
        println!(
            "read {}, added {} to the repository ({} stored), {} in total",
            HumanBytes(m.bytes_read),
            HumanBytes(m.data_added),
            HumanBytes(m.data_added_stored),
            HumanBytes(m.total_bytes)
        );
        println!("took {:.1} s", m.duration_secs);
    }
    if !s.skipped.is_empty() {
        if !ctx.quiet {
            eprintln!("warning: {} entries could not be read and are not in the snapshot", s.skipped.len());
        }
        return Ok(Outcome::Incomplete);
    }
    Ok(Outcome::Done)
}

fn snapshots(ctx: &Context_) -> Result<Outcome> {
    let repo = ctx.open()?;
    let (all, bad) = repo.snapshots()?;
    for (name, e) in &bad {
        eprintln!("warning: snapshot {name} is unreadable: {e}");
    }
    if ctx.json {
        let list: Vec<_> = all
            .iter()
            .map(|(id, s)| {
                json!({
                    "id": id, "short_id": id.short(), "time": s.time, "host": s.hostname, "username": s.username,
                    "paths": s.paths, "tags": s.tags, "tree": s.tree, "parent": s.parent, "summary": s.summary,
                    "skipped": s.skipped.len(),
                })
            })
            .collect();
        return print_json(&list).map(|()| Outcome::Done);
    }
    println!("{:<9} {:<20} {:<16} {:>10}  {:<12} paths", "id", "time", "host", "size", "tags");
    for (id, s) in &all {
        let time = s
            .timestamp()
            .map(|t| t.with_timezone(&chrono::Local).format("%Y-%m-%d %H:%M:%S").to_string())
            .unwrap_or_else(|| s.time.clone());
        println!(
            "{:<9} {:<20} {:<16} {:>10}  {:<12} {}",
            id.short(),
            time,
            s.hostname,
            HumanBytes(s.summary.total_bytes).to_string(),
            s.tags.join(","),
            s.paths.join(" ")
        );
    }
    println!("{} snapshots", all.len());
    Ok(Outcome::Done)
}

fn ls(ctx: &Context_, spec: &str, path: &str) -> Result<Outcome> {
    let repo = ctx.open_indexed()?;
    let (_, snapshot) = repo.find_snapshot(spec)?;
    let entries = inspect::ls(&repo, &snapshot.tree, path)?;
    if ctx.json {
        return print_json(&entries).map(|()| Outcome::Done);
    }
    for e in entries {
        let link = e.target.map(|t| format!(" -> {t}")).unwrap_or_default();
        let t = match e.kind {
            "dir" => 'd',
            "symlink" => 'l',
            _ => '-',
        };
        println!("{t}{:04o} {:>12} {} {}{link}", e.mode, e.size, e.mtime, e.path);
    }
    Ok(Outcome::Done)
}

fn restore_snapshot(ctx: &Context_, spec: &str, options: &restore::RestoreOptions) -> Result<Outcome> {
    let repo = ctx.open_indexed()?;
    let (id, snapshot) = repo.find_snapshot(spec)?;
    let bar = ctx.bar("restoring");
    let summary = restore::run(&repo, &snapshot.tree, options, &bar);
    bar.finish();
    let summary = summary?;
    if ctx.json {
        let failures: Vec<_> = summary.failures.iter().map(|(p, e)| json!({"path": p, "error": e})).collect();
        print_json(&json!({
            "snapshot": id, "files_restored": summary.files_restored, "files_already_present": summary.files_already_present,
            "dirs": summary.dirs, "symlinks": summary.symlinks, "bytes_written": summary.bytes_written, "failures": failures,
        }))?;
    } else if !ctx.quiet {
        println!(
            "restored snapshot {} to {}: {} files ({}), {} already present, {} folders, {} symlinks",
            id.short(),
            options.target.display(),
            summary.files_restored,
            HumanBytes(summary.bytes_written),
            summary.files_already_present,
            summary.dirs,
            summary.symlinks
        );
    }
    if !summary.failures.is_empty() {
        eprintln!("snap: {} paths could not be restored (listed above)", summary.failures.len());
        return Ok(Outcome::Incomplete);
    }
    Ok(Outcome::Done)
}

fn parse_percent(s: &str) -> Result<f64> {
    let n: f64 = s
        .trim_end_matches('%')
        .parse()
        .map_err(|_| anyhow!("--read-data-subset takes a percentage like 10%, not {s:?}"))?;
    if !(n > 0.0 && n <= 100.0) {
        bail!("--read-data-subset must be above 0% and at most 100%");
    }
    Ok(n / 100.0)
}

fn run_check(ctx: &Context_, read_data: bool, subset: Option<&str>) -> Result<Outcome> {
    let mut repo = ctx.open_uncached()?;
    let subset = subset.map(parse_percent).transpose()?;
    let options = check::CheckOptions { read_data: read_data || subset.is_some(), subset, retry_lock: ctx.retry_lock };
    let bar = ctx.bar("reading packs");
    let report = check::run(&mut repo, &options, &bar);
    bar.finish();
    let report = report?;
    if ctx.json {
        let problems: Vec<_> = report
            .problems
            .iter()
            .map(|p| json!({"object": p.object, "problem": p.problem, "affected": p.affected}))
            .collect();
        print_json(&json!({
            "clean": report.is_clean(), "problems": problems, "notes": report.notes, "snapshots": report.snapshots,
            "trees": report.trees, "packs": report.packs, "packs_read": report.packs_read, "blobs_read": report.blobs_read,
        }))?;
    } else {
        for n in &report.notes {
            if !ctx.quiet {
                println!("note: {n}");
            }
        }
        for p in &report.problems {
            println!("damaged: {}: {}", p.object, p.problem);
            for a in &p.affected {
                println!("  needed by {a}");
            }
        }
        if !ctx.quiet {
            println!(
                "checked {} snapshots, {} trees, {} packs{}",
                report.snapshots,
                report.trees,
                report.packs,
                if options.read_data {
                    format!(" ({} packs, {} blobs read and verified)", report.packs_read, report.blobs_read)
                } else {
                    String::new()
                }
            );
        }
    }
    if report.is_clean() {
        if !ctx.json && !ctx.quiet {
            println!("no problems found");
        }
        Ok(Outcome::Done)
    } else {
        let hint = if report.unindexed_packs > 0 {
            format!(
                "; {} packs are in no index: `snap repair index` indexes them again and may recover what is missing",
                report.unindexed_packs
            )
        } else {
            String::new()
        };
        bail!("the repository has {} problems (listed above){hint}", report.problems.len())
    }
}

fn diff(ctx: &Context_, first: &str, second: &str) -> Result<Outcome> {
    let repo = ctx.open_indexed()?;
    let (_, a) = repo.find_snapshot(first)?;
    let (_, b) = repo.find_snapshot(second)?;
    let d = inspect::diff(&repo, &a.tree, &b.tree)?;
    if ctx.json {
        return print_json(&d).map(|()| Outcome::Done);
    }
    for p in &d.added {
        println!("+ {p}");
    }
    for p in &d.removed {
        println!("- {p}");
    }
    for p in &d.modified {
        println!("M {p}");
    }
    for p in &d.metadata {
        println!("U {p}");
    }
    println!(
        "{} added, {} removed, {} modified, {} metadata only",
        d.added.len(),
        d.removed.len(),
        d.modified.len(),
        d.metadata.len()
    );
    Ok(Outcome::Done)
}

fn stats(ctx: &Context_, spec: Option<&str>) -> Result<Outcome> {
    let repo = ctx.open_indexed()?;
    let (all, _) = repo.snapshots()?;
    // What each snapshot alone holds is judged against all of them, whichever are shown.
    let freed = prune::exclusive_bytes(&repo, &all);
    let chosen = match spec {
        Some(spec) => vec![repo.find_snapshot(spec)?],
        None => all,
    };
    let s = inspect::stats(&repo, &chosen)?;
    let per_snapshot: Vec<_> = chosen
        .iter()
        .map(|(id, snap)| json!({"id": id, "time": snap.time, "freed_if_removed": freed.get(id).copied().unwrap_or(0)}))
        .collect();
    if ctx.json {
        let mut value = serde_json::to_value(&s)?;
        value["snapshots_detail"] = json!(per_snapshot);
        return print_json(&value).map(|()| Outcome::Done);
    }
    println!("snapshots:              {}", s.snapshots);
    println!("logical size:           {}", HumanBytes(s.logical_bytes));
    println!("unique data:            {} in {} chunks (whole repository)", HumanBytes(s.unique_bytes), s.unique_chunks);
    println!("stored data:            {} (after compression and encryption)", HumanBytes(s.unique_stored_bytes));
    println!("repository packs:       {} in {} packs", HumanBytes(s.pack_bytes), s.packs);
    println!("deduplication ratio:    {:.2}", s.dedup_ratio);
    println!("compression ratio:      {:.2}", s.compression_ratio);
    println!("\nspace that removing each snapshot (and pruning) would free:");
    for (id, snap) in &chosen {
        println!("  {} {}  {}", id.short(), snap.time, HumanBytes(freed.get(id).copied().unwrap_or(0)));
    }
    Ok(Outcome::Done)
}
