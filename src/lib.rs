//! # snap: a content-addressed, deduplicating backup archive
//!
//! The library behind the `snap` command. A [`repo::Repository`] stores files cut into
//! content-defined chunks ([`chunker`]), each kept once under its BLAKE3 id ([`id`]),
//! compressed when that pays ([`compress`]), sealed with XChaCha20-Poly1305 ([`crypto`]) and
//! grouped into pack files ([`packer`], [`format::pack`]) found through an [`index`].
//! Directories become tree objects and a backup a snapshot ([`format::tree`],
//! [`format::snapshot`]). Storage is a small trait ([`store::Backend`]).
//!
//! The commands are in [`ops`]: [`ops::create`], [`ops::restore`], [`ops::check`], and the
//! read-only views in [`ops::inspect`].
//!
//! ```no_run
//! use snap::repo::{InitOptions, Repository};
//! use snap::store::open_backend;
//! # fn main() -> snap::error::Result<()> {
//! let options = InitOptions { encryption: false, kdf: Default::default(), append_only: false };
//! let repo = Repository::init(open_backend("/tmp/repo", &Default::default())?, None, &options)?;
//! # Ok(()) }
//! ```

pub mod chunker;
pub mod clock;
pub mod compress;
pub mod crypto;
pub mod error;
pub mod format;
#[doc(hidden)]
pub mod fuzz_targets;
pub mod id;
pub mod index;
pub mod lock;
pub mod ops;
pub mod packer;
pub mod repo;
pub mod store;
