//! The progress bar on a real terminal (issue 13.6): its total is every target from its first
//! draw, the confirmation prompt's line survives the bars drawn after it, and a run's last word
//! is not cleared away by them.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::conventions::OnTerminal;
use crate::support::{BULK, World};
use std::time::Duration;

/// Bulk sources the sandbox adds: the plan's targets.
const TARGETS: usize = 40;

fn bulk_world() -> World {
    World::with(|c| {
        c.extra_sources = TARGETS;
        // Long enough a run for the bar to be drawn many times.
        c.latency = Duration::from_millis(10);
    })
}

/// Every `pos/len` the writes' bar drew, in order.
fn bar_draws(shown: &str) -> Vec<(usize, usize)> {
    shown
        .match_indices(" targets")
        .filter_map(|(at, _)| {
            let counts = shown[..at].rsplit(' ').next()?;
            let (pos, len) = counts.split_once('/')?;
            Some((pos.parse().ok()?, len.parse().ok()?))
        })
        .collect()
}

/// The first `apply --yes` on a terminal: the bar's length is the number of targets from its
/// first draw (it used to grow as catalogs arrived: `33/36`), and it counts up to it.
#[test]
fn the_bar_counts_every_target_from_its_first_draw() {
    let world = bulk_world();
    let plan = world.plan("bulk.yaml", BULK);
    let mut terminal = OnTerminal::start(&world, &["apply", "--yes", &plan.display().to_string()]);
    let code = terminal.exit_within(Duration::from_secs(120));
    let shown = terminal.shown();
    assert_eq!(code, Some(0), "{shown}");
    let draws = bar_draws(&shown);
    assert!(!draws.is_empty(), "the bar was never drawn: {shown}");
    assert!(
        draws.iter().all(|&(pos, len)| len == TARGETS && pos <= len),
        "{draws:?}"
    );
    assert!(
        draws.windows(2).all(|w| w[0].0 <= w[1].0),
        "the bar went back: {draws:?}"
    );
    assert_eq!(world.requests("POST /connections"), TARGETS as u64);
}

/// Answering `yes` at the prompt: the question and the answer stay on screen, the resolve
/// spinners above it are not drawn twice, and the bar below counts every target.
#[test]
fn the_prompt_line_survives_the_bar() {
    let world = bulk_world();
    let plan = world.plan("bulk.yaml", BULK);
    let mut terminal = OnTerminal::start(&world, &["apply", &plan.display().to_string()]);
    let prompt = format!("Apply {TARGETS} creates? Only 'yes' or 'y' proceeds: ");
    terminal.wait_for(&prompt);
    terminal.type_keys(b"yes\r");
    let code = terminal.exit_within(Duration::from_secs(120));
    let shown = terminal.shown();
    assert_eq!(code, Some(0), "{shown}");
    let screen = Screen::replay(&shown, 100);
    assert!(
        screen.iter().any(|line| *line == format!("{prompt}yes")),
        "the prompt's line is gone:\n{}",
        screen.join("\n")
    );
    for spinner in [
        "✔ template",
        "✔ sources",
        "✔ lease        taken",
        "✔ connections",
        "✔ catalogs",
    ] {
        assert_eq!(
            screen.iter().filter(|l| l.starts_with(spinner)).count(),
            1,
            "{spinner}:\n{}",
            screen.join("\n")
        );
    }
    let after = &shown[shown.find(&prompt).unwrap()..];
    let draws = bar_draws(after);
    assert!(!draws.is_empty(), "the bar was never drawn: {after}");
    assert!(draws.iter().all(|&(_, len)| len == TARGETS), "{draws:?}");
    assert_eq!(world.requests("POST /connections"), TARGETS as u64);
}

/// Ctrl-C while waiting for another run's lease: the run's last word (nothing was written)
/// stays on screen, below the spinners; they used to be cleared away over it once the client
/// let go of the reporter.
#[test]
fn ctrl_c_while_waiting_for_the_lease_leaves_the_last_word_on_screen() {
    let world = World::with(|c| {
        c.extra_sources = TARGETS;
        c.latency = Duration::from_millis(20);
        c.create_delay = Duration::from_millis(300);
    });
    let plan = world.plan("bulk.yaml", BULK);
    let mut holder = world
        .replicate_process()
        .args(["apply", "--yes", "-q", "--concurrency", "1"])
        .arg(&plan)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    crate::support::wait_until("a create", || world.requests("POST /connections") >= 1);
    holder.kill().unwrap();
    holder.wait().unwrap();
    let creates = world.requests("POST /connections");

    let plan = plan.display().to_string();
    let mut terminal =
        OnTerminal::start(&world, &["apply", "--yes", "--lock-timeout", "60s", &plan]);
    terminal.wait_for("waiting up to");
    // The lease's own spinner says so too.
    terminal.wait_for("waiting for it");
    terminal.type_keys(b"\x03");
    let code = terminal.exit_within(Duration::from_secs(30));
    let shown = terminal.shown();
    assert_eq!(code, Some(130), "{shown}");
    let screen = Screen::replay(&shown, 100);
    // The unfinished spinner is cleared, the finished ones stay. (Not always once each: the
    // terminal echoes `^C` where indicatif left the cursor, past the end of its last line, so
    // its next clear starts a line too low and one finished line can remain twice.)
    let count = |line: &str| screen.iter().filter(|l| l.contains(line)).count();
    assert_eq!(count("waiting for it"), 0, "{}", screen.join("\n"));
    assert!(
        count("✔ template") >= 1 && count("✔ sources") >= 1,
        "{}",
        screen.join("\n")
    );
    let last = screen.iter().rev().find(|line| !line.trim().is_empty());
    assert_eq!(
        last.map(String::as_str),
        Some("error: interrupted before anything was written"),
        "{}",
        screen.join("\n")
    );
    assert_eq!(world.requests("POST /connections"), creates);
}

/// What a terminal of `width` columns shows after the bytes a program wrote to it: enough of
/// VT100 for what indicatif and the prompt send (text, `\r`, `\n`, cursor up and down, erase in
/// line and in display; colours ignored). The screen never scrolls away: rows are kept.
struct Screen {
    rows: Vec<Vec<char>>,
    row: usize,
    col: usize,
    width: usize,
}

impl Screen {
    fn replay(shown: &str, width: usize) -> Vec<String> {
        let mut screen = Screen {
            rows: vec![Vec::new()],
            row: 0,
            col: 0,
            width,
        };
        let mut chars = shown.chars().peekable();
        while let Some(c) = chars.next() {
            match c {
                '\r' => screen.col = 0,
                '\n' => screen.down(1),
                '\x08' => screen.col = screen.col.saturating_sub(1),
                '\x1b' if chars.peek() == Some(&'[') => {
                    chars.next();
                    let mut params = String::new();
                    while let Some(&p) = chars.peek() {
                        if p.is_ascii_digit() || p == ';' || p == '?' {
                            params.push(p);
                            chars.next();
                        } else {
                            break;
                        }
                    }
                    let n = params.parse::<usize>().unwrap_or(1).max(1);
                    match chars.next() {
                        Some('A') => screen.row = screen.row.saturating_sub(n),
                        Some('B') => screen.down(n),
                        Some('K') => screen.erase_line(&params),
                        Some('J') => screen.erase_below(),
                        _ => {}
                    }
                }
                c if c.is_control() => {}
                c => screen.put(c),
            }
        }
        screen
            .rows
            .iter()
            .map(|r| r.iter().collect::<String>().trim_end().to_string())
            .collect()
    }

    fn down(&mut self, n: usize) {
        self.row += n;
        while self.rows.len() <= self.row {
            self.rows.push(Vec::new());
        }
    }

    fn put(&mut self, c: char) {
        if self.col >= self.width {
            self.col = 0;
            self.down(1);
        }
        let row = &mut self.rows[self.row];
        if row.len() <= self.col {
            row.resize(self.col + 1, ' ');
        }
        row[self.col] = c;
        self.col += 1;
    }

    /// `ESC[K` / `ESC[0K`: to the end of the line; `ESC[2K`: the whole line.
    fn erase_line(&mut self, params: &str) {
        let row = &mut self.rows[self.row];
        if params == "2" {
            row.clear();
        } else {
            row.truncate(self.col);
        }
    }

    /// `ESC[J`: from the cursor to the end of the screen.
    fn erase_below(&mut self) {
        self.rows[self.row].truncate(self.col);
        self.rows.truncate(self.row + 1);
    }
}

#[test]
fn the_screen_model_replays_a_redraw() {
    // Two lines drawn, then cleared from the first and drawn again: one copy of each remains.
    let shown = "a\r\nx 1\r\ny 1\x1b[1A\r\x1b[2K\x1b[1B\r\x1b[2K\x1b[1Ax 2\r\ny 2";
    assert_eq!(Screen::replay(shown, 100), ["a", "x 2", "y 2"]);
    assert_eq!(Screen::replay("abcdef", 4), ["abcd", "ef"]);
}
