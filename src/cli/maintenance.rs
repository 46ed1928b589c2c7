//! Commands that change or mend an existing repository: key slots, forget, prune, repair and
//! unlock. Like every command function, they open the repository, call the library and print.

use anyhow::{Result, anyhow, bail};
use indicatif::HumanBytes;
use serde_json::json;

use super::commands::{Context_, kdf, print_json};
use super::password;
use super::{KeyAction, Outcome};
use snap::crypto::keyfile::Credential;
use snap::error::Error;
use snap::ops::{forget, prune, repair};

pub(super) fn key(ctx: &Context_, action: KeyAction) -> Result<Outcome> {
    let repo = ctx.open()?;
    match action {
        KeyAction::List => {
            let keys = repo.list_keys()?;
            if ctx.json {
                let list: Vec<_> = keys
                    .iter()
                    .map(|(name, kf)| match kf {
                        Ok(k) => json!({"id": name, "current": Some(name.as_str()) == repo.key_name(), "created": k.created, "host": k.hostname, "username": k.username}),
                        Err(e) => json!({"id": name, "error": e.to_string()}),
                    })
                    .collect();
                return print_json(&list).map(|()| Outcome::Done);
            }
            for (name, kf) in keys {
                let mark = if Some(name.as_str()) == repo.key_name() { "*" } else { " " };
                match kf {
                    Ok(k) => println!("{mark}{} {} {}@{}", &name[..8], k.created, k.username, k.hostname),
                    Err(e) => println!("{mark}{} unreadable: {e}", &name[..8]),
                }
            }
        }
        KeyAction::Add { new_password_file, new_key_file, kdf: k } => {
            let credential = match new_key_file {
                Some(path) => password::read_or_create_key_file(&path)?.0,
                None => Credential::Password(password::new_from(new_password_file.as_deref(), "New password")?),
            };
            let name = repo.add_key(&credential, kdf(&k))?;
            println!("added key {}", &name[..8]);
        }
        KeyAction::Remove { id } => {
            let name = repo.remove_key(&id)?;
            println!("removed key {}", &name[..8]);
        }
        KeyAction::Passwd { new_password_file, kdf: k } => {
            if ctx.password.key_file.is_some() {
                bail!(
                    "the repository was opened with a key file: use `snap key add` and `snap key remove` to replace it"
                );
            }
            if repo.config().append_only {
                return Err(Error::AppendOnly("changing the password (it removes the old key)").into());
            }
            let pw = password::new_from(new_password_file.as_deref(), "New password")?;
            let name = repo.add_key(&Credential::Password(pw), kdf(&k))?;
            let old = repo.key_name().map(str::to_string).ok_or_else(|| anyhow!("the repository is not encrypted"))?;
            repo.backend().remove(snap::store::FileKind::Key, &old)?;
            println!("password changed: key {} replaces {}", &name[..8], &old[..8]);
        }
    }
    Ok(Outcome::Done)
}

pub(super) fn run_forget(
    ctx: &Context_,
    policy: &forget::Policy,
    group_by: forget::GroupBy,
    dry_run: bool,
    then_prune: bool,
) -> Result<Outcome> {
    let repo = ctx.open()?;
    let lock = if dry_run { None } else { Some(snap::lock::acquire(&repo, true, "forget", ctx.retry_lock)?) };
    let (snapshots, _) = repo.snapshots()?;
    let groups = forget::plan(&snapshots, policy, group_by)?;
    let removed = if dry_run { 0 } else { forget::remove(&repo, &groups)? };
    drop(lock);
    if ctx.json {
        print_json(&json!({ "groups": groups, "removed": removed, "dry_run": dry_run }))?;
    } else if !ctx.quiet {
        for g in &groups {
            println!("{}", g.key);
            for d in &g.snapshots {
                let verdict = if d.keep { format!("keep    ({})", d.reasons.join(", ")) } else { "remove".to_string() };
                println!("  {} {}  {verdict}", d.id.short(), d.time);
            }
        }
        let to_remove = groups.iter().flat_map(|g| &g.snapshots).filter(|d| !d.keep).count();
        if dry_run {
            println!("would remove {to_remove} snapshots (dry run: nothing removed)");
        } else {
            println!("removed {removed} snapshots");
        }
    }
    if then_prune && !dry_run {
        return run_prune(ctx, &prune::PruneOptions { retry_lock: ctx.retry_lock, ..Default::default() });
    }
    Ok(Outcome::Done)
}

pub(super) fn run_prune(ctx: &Context_, options: &prune::PruneOptions) -> Result<Outcome> {
    let mut repo = ctx.open()?;
    let bar = ctx.bar("repacking");
    let report = prune::run(&mut repo, options, &bar);
    bar.finish();
    let report = report?;
    if ctx.json {
        return print_json(&report).map(|()| Outcome::Done);
    }
    if !ctx.quiet {
        println!(
            "{} snapshots use {} blobs; packs: {} kept, {} deleted, {} repacked, {} unindexed leftovers deleted",
            report.snapshots,
            report.blobs_used,
            report.packs_kept,
            report.packs_deleted,
            report.packs_repacked,
            report.unindexed_packs_deleted
        );
        let verb = if report.dry_run { "would free" } else { "freed" };
        println!(
            "{verb} {} ({} -> {}){}",
            HumanBytes(report.bytes_freed),
            HumanBytes(report.bytes_before),
            HumanBytes(report.bytes_after),
            if report.dry_run { " (dry run: nothing changed)" } else { "" }
        );
    }
    Ok(Outcome::Done)
}

pub(super) fn repair_index(ctx: &Context_, dry_run: bool) -> Result<Outcome> {
    let mut repo = ctx.open_uncached()?;
    let bar = ctx.bar("reading pack headers");
    let report = repair::index(&mut repo, dry_run, ctx.retry_lock, &bar);
    bar.finish();
    let report = report?;
    if ctx.json {
        print_json(&report)?;
    } else if !ctx.quiet {
        println!(
            "{} packs with {} blobs ({} not in the old index, {} listed but gone); {} unreadable",
            report.packs,
            report.blobs,
            report.packs_added,
            report.packs_missing,
            report.unreadable_packs.len()
        );
        for (pack, reason) in &report.unreadable_packs {
            println!("  unreadable pack {pack}: {reason}");
        }
        if dry_run {
            println!("dry run: would replace {} index files; nothing changed", report.index_files_removed);
        } else {
            println!(
                "wrote {} index files, removed {} old ones",
                report.index_files_written, report.index_files_removed
            );
        }
    }
    Ok(if report.unreadable_packs.is_empty() { Outcome::Done } else { Outcome::Incomplete })
}

pub(super) fn repair_snapshots(ctx: &Context_, dry_run: bool, read_data: bool) -> Result<Outcome> {
    let mut repo = ctx.open_uncached()?;
    let report = repo.load_index()?;
    if !report.damaged.is_empty() {
        bail!("{} index files are damaged: run `snap repair index` first", report.damaged.len());
    }
    let repaired = repair::snapshots(&repo, dry_run, read_data, ctx.retry_lock)?;
    if ctx.json {
        return print_json(&json!({ "snapshots": repaired, "dry_run": dry_run })).map(|()| Outcome::Done);
    }
    if ctx.quiet {
        return Ok(Outcome::Done);
    }
    if repaired.is_empty() {
        println!("every snapshot is intact: nothing to repair");
    }
    for r in &repaired {
        let short = &r.id[..8.min(r.id.len())];
        match &r.new_id {
            Some(new) => {
                println!("snapshot {short}: {} paths dropped, saved as {}", r.dropped.len(), &new[..8.min(new.len())])
            }
            None => println!("snapshot {short}: would drop {} paths", r.dropped.len()),
        }
        for (path, reason) in &r.dropped {
            println!("  {path}: {reason}");
        }
    }
    if dry_run && !repaired.is_empty() {
        println!("dry run: nothing changed");
    }
    Ok(Outcome::Done)
}

pub(super) fn unlock(ctx: &Context_, all: bool) -> Result<Outcome> {
    let repo = ctx.open()?;
    let removed = snap::lock::remove_unusable(&repo, all)?;
    if ctx.json {
        print_json(&removed)?;
    } else if !ctx.quiet {
        for (name, reason) in &removed {
            println!("removed lock {}: {reason}", &name[..8.min(name.len())]);
        }
        println!("{} lock files removed", removed.len());
    }
    Ok(Outcome::Done)
}
