//! Progress bars on a terminal, silence elsewhere; warnings always go to stderr.

use std::io::IsTerminal;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use snap::ops::Progress;

pub struct Bar {
    bar: ProgressBar,
    quiet_warnings: bool,
    items_done: AtomicU64,
    items_total: AtomicU64,
}

impl Bar {
    /// A bar for `verb` ("backing up", "restoring"...), shown only when stderr is a terminal.
    pub fn new(verb: &str, enabled: bool, quiet_warnings: bool) -> Bar {
        let bar = ProgressBar::with_draw_target(Some(0), ProgressDrawTarget::hidden());
        if enabled && std::io::stderr().is_terminal() {
            bar.set_draw_target(ProgressDrawTarget::stderr());
            bar.enable_steady_tick(Duration::from_millis(200));
        }
        let style = ProgressStyle::with_template(&format!(
            "{verb} [{{elapsed_precise}}] {{wide_bar}} {{bytes}}/{{total_bytes}} {{binary_bytes_per_sec}} ETA {{eta}} {{msg}}"
        ))
        .unwrap_or_else(|_| ProgressStyle::default_bar());
        bar.set_style(style);
        Bar { bar, quiet_warnings, items_done: AtomicU64::new(0), items_total: AtomicU64::new(0) }
    }

    pub fn finish(&self) {
        self.bar.finish_and_clear();
    }
}

impl Progress for Bar {
    fn start(&self, items: u64, bytes: u64) {
        self.items_total.store(items, Ordering::Relaxed);
        self.items_done.store(0, Ordering::Relaxed);
        self.bar.set_length(bytes);
        self.bar.set_message(format!("0/{items}"));
        self.bar.set_position(0);
    }

    fn advance(&self, bytes: u64) {
        self.bar.inc(bytes);
    }

    fn item_done(&self) {
        let done = self.items_done.fetch_add(1, Ordering::Relaxed) + 1;
        self.bar.set_message(format!("{done}/{}", self.items_total.load(Ordering::Relaxed)));
    }

    fn warn(&self, message: &str) {
        if !self.quiet_warnings {
            self.bar.suspend(|| eprintln!("warning: {message}"));
        }
    }
}
