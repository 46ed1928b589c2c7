//! The commands, one module each. They take an open repository and options, report progress
//! through a trait the CLI implements, and return what happened; they never print.

pub mod batch;
pub mod check;
pub mod create;
pub mod filter;
pub mod forget;
pub mod inspect;
pub mod prune;
pub mod repair;
pub mod restore;
pub mod walk;

/// Runs `work` (which uses rayon) on as many threads as the repository's backend wants for
/// reads: the global pool for a local folder, a larger one for object storage.
pub fn with_read_threads<R: Send>(repo: &crate::repo::Repository, work: impl FnOnce() -> R + Send) -> R {
    match repo.backend().read_parallelism() {
        0 => work(),
        n => match rayon::ThreadPoolBuilder::new().num_threads(n.max(rayon::current_num_threads())).build() {
            Ok(pool) => pool.install(work),
            Err(_) => work(),
        },
    }
}

/// Progress callbacks. The library calls them from worker threads; all are optional.
pub trait Progress: Sync {
    /// The amount of work is known: `items` files (or packs) and `bytes` bytes.
    fn start(&self, _items: u64, _bytes: u64) {}
    /// `bytes` more bytes are done.
    fn advance(&self, _bytes: u64) {}
    /// One more item is done.
    fn item_done(&self) {}
    /// Something went wrong but the command goes on.
    fn warn(&self, _message: &str) {}
}

/// Progress that reports nothing.
pub struct Silent;
impl Progress for Silent {}
