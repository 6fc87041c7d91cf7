//! Text from the server or a plan, made safe to show on a terminal.
//!
//! A source named `\e[2J` would clear the screen, and `\e]0;…\a` retitle the window, if printed
//! as is. Every human rendering passes what it did not write itself through [`controls`]: line
//! breaks and tabs stay (they are the text's structure), every other control character (C0,
//! DEL, C1 including the 8-bit CSI U+009B) is shown as `\u{1b}`. The JSON document escapes them
//! in its own syntax ([`super::Report::to_json`]).

use std::borrow::Cow;
use std::fmt::Write;

/// `text` with every control character but `\n` and `\t` written as `\u{…}`.
pub fn controls(text: &str) -> Cow<'_, str> {
    if !text.chars().any(is_hidden) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 16);
    for c in text.chars() {
        if is_hidden(c) {
            let _ = write!(out, "\\u{{{:x}}}", u32::from(c));
        } else {
            out.push(c);
        }
    }
    Cow::Owned(out)
}

/// A control character a terminal would act on rather than show.
pub fn is_hidden(c: char) -> bool {
    c.is_control() && c != '\n' && c != '\t'
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shows_control_characters_and_keeps_line_structure() {
        let cases = [
            ("plain → text", "plain → text"),
            ("a\nb\tc", "a\nb\tc"),
            ("\u{1b}[2J", r"\u{1b}[2J"),
            ("\u{1b}]0;title\u{7}", r"\u{1b}]0;title\u{7}"),
            ("\r\0\u{7f}", r"\u{d}\u{0}\u{7f}"),
            ("\u{9b}31m\u{85}", r"\u{9b}31m\u{85}"),
            ("", ""),
        ];
        for (input, shown) in cases {
            assert_eq!(controls(input), shown, "{input:?}");
        }
        assert!(matches!(controls("no change"), Cow::Borrowed(_)));
    }
}
