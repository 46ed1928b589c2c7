//! Command-line parsing and dispatch. Exit codes (also in README.md):
//! 0 success; 1 error; 3 finished but incomplete (files skipped by `create`, files not restored
//! by `restore`); 10 no repository at the given location; 12 wrong password.

mod commands;
mod maintenance;
mod password;
mod progress;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand, ValueEnum};
use snap::error::Error;

#[derive(Parser)]
#[command(name = "snap", version, about = "Deduplicating, encrypted backups of phone galleries and everything else")]
pub struct Cli {
    /// Repository location: a folder (or `local:PATH`), or `s3:https://host[:port]/bucket/prefix`
    /// (credentials from AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_SESSION_TOKEN or AWS_PROFILE).
    #[arg(short, long, global = true, env = "SNAP_REPOSITORY")]
    repo: Option<String>,
    /// S3 signing region (default: AWS_REGION, AWS_DEFAULT_REGION, then us-east-1).
    #[arg(long, global = true, env = "SNAP_S3_REGION", value_name = "REGION")]
    s3_region: Option<String>,
    /// Address the bucket as `bucket.host` (virtual-host style) instead of `host/bucket`.
    #[arg(long, global = true, env = "SNAP_S3_VIRTUAL_HOST")]
    s3_virtual_host: bool,
    /// Where to cache index files, snapshots and trees of remote repositories
    /// (default: $XDG_CACHE_HOME/snap or ~/.cache/snap).
    #[arg(long, global = true, env = "SNAP_CACHE_DIR", value_name = "DIR")]
    cache_dir: Option<PathBuf>,
    /// Do not use the local cache of remote repositories.
    #[arg(long, global = true)]
    no_cache: bool,
    /// Read the password from this file.
    #[arg(long, global = true, env = "SNAP_PASSWORD_FILE")]
    password_file: Option<PathBuf>,
    /// Run this shell command and take its output as the password.
    #[arg(long, global = true, env = "SNAP_PASSWORD_COMMAND")]
    password_command: Option<String>,
    /// Open the repository with a key file (64 hex digits) instead of a password; `init`
    /// creates the file if it does not exist.
    #[arg(long, global = true, env = "SNAP_KEY_FILE")]
    key_file: Option<PathBuf>,
    /// Wait up to this many seconds for a conflicting lock (a running prune or backup).
    #[arg(long, global = true, default_value_t = 0, value_name = "SECONDS")]
    retry_lock: u64,
    /// Print machine-readable JSON on stdout.
    #[arg(long, global = true)]
    json: bool,
    /// Print no progress and no warnings, only results and errors.
    #[arg(short, long, global = true)]
    quiet: bool,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
pub enum RepairWhat {
    /// Rebuild the index from the packs' own headers (after index files were lost or damaged).
    Index {
        /// Show what would be rebuilt; change nothing.
        #[arg(long)]
        dry_run: bool,
    },
    /// Drop from every snapshot the files and folders whose data is gone, keeping the rest
    /// (run `repair index` first if index files were damaged).
    Snapshots {
        /// Show what would be dropped; change nothing.
        #[arg(long)]
        dry_run: bool,
        /// Also read and verify every chunk, so files with damaged (not only missing) data go.
        #[arg(long)]
        read_data: bool,
    },
}

#[derive(Clone, Copy, ValueEnum)]
pub enum EncryptionChoice {
    /// XChaCha20-Poly1305, keys from the password with Argon2id.
    Chacha20,
    /// No encryption (ids are plain BLAKE3).
    None,
}

#[derive(clap::Args)]
pub struct KdfArgs {
    /// Argon2id memory in KiB for the new key (default: OWASP's recommended 19 MiB).
    #[arg(long, default_value_t = 19 * 1024)]
    kdf_memory_kib: u32,
    /// Argon2id passes for the new key.
    #[arg(long, default_value_t = 2)]
    kdf_iterations: u32,
}

#[derive(Subcommand)]
enum Command {
    /// Create a new repository.
    Init {
        #[arg(long, value_enum, default_value = "chacha20")]
        encryption: EncryptionChoice,
        /// Refuse every command that deletes (forget, prune, key remove).
        #[arg(long)]
        append_only: bool,
        #[command(flatten)]
        kdf: KdfArgs,
    },
    /// Back folders up into a new snapshot.
    Create {
        /// Folders (or files) to back up.
        #[arg(required = true)]
        paths: Vec<PathBuf>,
        /// Leave out paths matching this glob (relative to the snapshot root, or a bare name).
        #[arg(short, long)]
        exclude: Vec<String>,
        /// Tag the snapshot (repeatable).
        #[arg(long)]
        tag: Vec<String>,
        /// Host name to record (default: this machine's).
        #[arg(long)]
        host: Option<String>,
        /// Compare against this snapshot instead of the latest of the same host and paths.
        #[arg(long)]
        parent: Option<String>,
        /// zstd level for compressible data.
        #[arg(long, default_value_t = snap::compress::DEFAULT_LEVEL, value_parser = clap::value_parser!(i32).range(1..=19))]
        compression: i32,
    },
    /// List snapshots.
    Snapshots,
    /// List files in a snapshot (below PATH, if given).
    Ls { snapshot: String, path: Option<String> },
    /// Restore a snapshot, or the files you pick, into a folder.
    Restore {
        snapshot: String,
        /// Folder to restore into (created if missing).
        #[arg(short, long)]
        target: PathBuf,
        /// Restore only paths matching this glob (a folder includes everything below it).
        #[arg(short, long)]
        include: Vec<String>,
        /// Skip paths matching this glob.
        #[arg(short, long)]
        exclude: Vec<String>,
    },
    /// Verify the repository's structure, and with --read-data every stored byte.
    Check {
        #[arg(long)]
        read_data: bool,
        /// Read a random share of the packs, e.g. 10%.
        #[arg(long, value_name = "PERCENT")]
        read_data_subset: Option<String>,
    },
    /// Show files added, removed and changed between two snapshots.
    Diff { first: String, second: String },
    /// Sizes, deduplication and compression ratios, and what removing each snapshot would free.
    Stats { snapshot: Option<String> },
    /// Remove snapshots by a retention policy (and with --prune, the data they alone used).
    Forget {
        #[arg(long)]
        keep_last: Option<usize>,
        #[arg(long)]
        keep_hourly: Option<usize>,
        #[arg(long)]
        keep_daily: Option<usize>,
        #[arg(long)]
        keep_weekly: Option<usize>,
        #[arg(long)]
        keep_monthly: Option<usize>,
        #[arg(long)]
        keep_yearly: Option<usize>,
        /// Keep every snapshot within this long of the group's newest, e.g. 30d, 12h, 1y6m.
        #[arg(long)]
        keep_within: Option<String>,
        /// Keep snapshots with this tag (repeatable).
        #[arg(long)]
        keep_tag: Vec<String>,
        /// Judge snapshots in groups of equal host, paths and/or tags.
        #[arg(long, default_value = "host,paths")]
        group_by: String,
        /// Show what would be kept and why; remove nothing.
        #[arg(long)]
        dry_run: bool,
        /// Prune right after forgetting.
        #[arg(long)]
        prune: bool,
    },
    /// Remove data that no snapshot references.
    Prune {
        /// Show the plan and the space it would free; change nothing.
        #[arg(long)]
        dry_run: bool,
        /// Repack packs with at least this percentage unused.
        #[arg(long, default_value_t = 20.0)]
        repack_threshold: f64,
    },
    /// Rebuild damaged repository metadata.
    Repair {
        #[command(subcommand)]
        what: RepairWhat,
    },
    /// Remove lock files no running snap can hold: stale and unreadable ones (or, with --all,
    /// every lock: only when you know no snap is running anywhere).
    Unlock {
        #[arg(long)]
        all: bool,
    },
    /// Turn append-only mode on or off for an existing repository.
    AppendOnly {
        #[arg(value_parser = ["on", "off"])]
        mode: String,
    },
    /// Manage the passwords (key slots) that open the repository.
    Key {
        #[command(subcommand)]
        action: KeyAction,
    },
}

#[derive(Subcommand)]
enum KeyAction {
    /// Add a password (or, with --new-key-file, a key file).
    Add {
        /// Read the new password from this file instead of asking.
        #[arg(long, conflicts_with = "new_key_file")]
        new_password_file: Option<PathBuf>,
        /// Add a key-file slot instead; the file is created if it does not exist.
        #[arg(long)]
        new_key_file: Option<PathBuf>,
        #[command(flatten)]
        kdf: KdfArgs,
    },
    /// List key slots.
    List,
    /// Remove a key slot by id prefix.
    Remove { id: String },
    /// Change the password used to open the repository.
    Passwd {
        #[arg(long)]
        new_password_file: Option<PathBuf>,
        #[command(flatten)]
        kdf: KdfArgs,
    },
}

/// What a command wants the process to exit with when it did not fail outright.
pub enum Outcome {
    Done,
    Incomplete,
}

pub fn main() -> ExitCode {
    let cli = Cli::parse();
    match commands::run(cli) {
        Ok(Outcome::Done) => ExitCode::SUCCESS,
        Ok(Outcome::Incomplete) => ExitCode::from(3),
        Err(e) => {
            eprintln!("snap: {}", one_line(&e));
            ExitCode::from(exit_code(&e))
        }
    }
}

fn one_line(e: &anyhow::Error) -> String {
    e.chain().map(|c| c.to_string()).collect::<Vec<_>>().join(": ")
}

fn exit_code(e: &anyhow::Error) -> u8 {
    match e.chain().find_map(|c| c.downcast_ref::<Error>()) {
        Some(Error::RepositoryNotFound(_)) => 10,
        Some(Error::WrongPassword | Error::WrongPasswordOrDamagedKey(_)) => 12,
        _ => 1,
    }
}
