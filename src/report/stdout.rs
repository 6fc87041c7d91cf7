//! Writing to stdout without panicking: a closed stdout (`replicate plan big.yaml | head -2`) is
//! a normal end, as in ripgrep. The first broken pipe marks stdout closed; later writes are
//! dropped in silence, and the run ends with its own status.

use std::io::{ErrorKind, Write};
use std::sync::atomic::{AtomicBool, Ordering};

/// Set once a write to stdout found its reader gone.
static CLOSED: AtomicBool = AtomicBool::new(false);

/// Writes `text` to stdout and flushes it. A reader that went away (`EPIPE`) ends stdout for the
/// rest of the run; any other error is dropped too, as there is nowhere left to say it.
pub fn print(text: &str) {
    if CLOSED.load(Ordering::Relaxed) {
        return;
    }
    let mut out = std::io::stdout().lock();
    if let Err(e) = out.write_all(text.as_bytes()).and_then(|()| out.flush()) {
        if e.kind() == ErrorKind::BrokenPipe {
            CLOSED.store(true, Ordering::Relaxed);
        }
    }
}

/// [`print`] with a line break.
pub fn println(text: &str) {
    print(&format!("{text}\n"));
}
