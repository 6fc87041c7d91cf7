//! How deep a YAML text nests, found by a linear pre-scan before the parser sees it.
//!
//! libyaml's scanner checks every open flow level (`[`, `{`) at every token, so `[[[…]]]`
//! 100,000 deep takes it about a minute, and `serde_yaml` refuses the depth (128) only after that
//! scan. This pass follows the scanner's own rules for what opens a collection (flow brackets
//! outside quotes, comments and block scalars; block sequences and mappings by their
//! indentation) and stops at the first place deeper than [`MAX_DEPTH`]. Where it cannot tell, it
//! counts a level rather than skip one: it may find a malformed document deeper than libyaml
//! would, never a well-formed one shallower.

/// `serde_yaml`'s own recursion limit: a document nested deeper never deserializes.
pub(super) const MAX_DEPTH: usize = 128;

/// Where the text went past [`MAX_DEPTH`]: 1-based line and column.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct TooDeep {
    pub(super) line: usize,
    pub(super) column: usize,
}

/// Checks that `text` (without a byte-order mark) nests at most [`MAX_DEPTH`] collections deep.
pub(super) fn check(text: &str) -> Result<(), TooDeep> {
    Scanner::new(text.as_bytes()).run()
}

/// A possible simple key (`key: value`) in block context: where it started.
#[derive(Clone, Copy)]
struct Key {
    line: usize,
    column: i64,
    offset: usize,
}

struct Scanner<'a> {
    bytes: &'a [u8],
    offset: usize,
    line: usize,
    /// In characters, as libyaml counts columns.
    column: i64,
    flow: usize,
    /// The block indentation (`-1` outside every block collection) and the ones it replaced.
    indent: i64,
    indents: Vec<i64>,
    simple_key_allowed: bool,
    key: Option<Key>,
}

impl<'a> Scanner<'a> {
    fn new(bytes: &'a [u8]) -> Self {
        Self {
            bytes,
            offset: 0,
            line: 0,
            column: 0,
            flow: 0,
            indent: -1,
            indents: Vec::new(),
            simple_key_allowed: true,
            key: None,
        }
    }

    fn at(&self, ahead: usize) -> u8 {
        self.bytes.get(self.offset + ahead).copied().unwrap_or(0)
    }

    /// The length of the line break at `ahead`, 0 when there is none: `\r\n`, `\r`, `\n`, and
    /// NEL, LS and PS, as libyaml reads them.
    fn break_len(&self, ahead: usize) -> usize {
        match (self.at(ahead), self.at(ahead + 1), self.at(ahead + 2)) {
            (b'\r', b'\n', _) | (0xC2, 0x85, _) => 2,
            (b'\r' | b'\n', _, _) => 1,
            (0xE2, 0x80, 0xA8 | 0xA9) => 3,
            _ => 0,
        }
    }

    fn is_blank(&self, ahead: usize) -> bool {
        matches!(self.at(ahead), b' ' | b'\t')
    }

    /// Blank, a line break or the end.
    fn is_blankz(&self, ahead: usize) -> bool {
        self.is_blank(ahead) || self.break_len(ahead) > 0 || self.offset + ahead >= self.bytes.len()
    }

    fn at_end(&self) -> bool {
        self.offset >= self.bytes.len()
    }

    /// Steps over one character (a whole UTF-8 sequence counts one column).
    fn advance(&mut self) {
        let breaks = self.break_len(0);
        if breaks > 0 {
            self.offset += breaks;
            self.line += 1;
            self.column = 0;
            return;
        }
        self.offset += 1;
        while self.offset < self.bytes.len() && self.bytes[self.offset] & 0xC0 == 0x80 {
            self.offset += 1;
        }
        self.column += 1;
    }

    fn skip_line(&mut self) {
        while !self.at_end() && self.break_len(0) == 0 {
            self.advance();
        }
    }

    /// `---` or `...` at the start of a line.
    fn at_document_marker(&self) -> bool {
        self.column == 0
            && (self.bytes[self.offset..].starts_with(b"---")
                || self.bytes[self.offset..].starts_with(b"..."))
            && self.is_blankz(3)
    }

    fn depth(&self) -> usize {
        self.flow + self.indents.len()
    }

    /// An error at `column` of the current line when the text is now too deep.
    fn too_deep(&self, column: i64) -> Result<(), TooDeep> {
        if self.depth() > MAX_DEPTH {
            return Err(TooDeep {
                line: self.line + 1,
                column: usize::try_from(column).unwrap_or(0) + 1,
            });
        }
        Ok(())
    }

    /// A new block collection when `column` is deeper than the current indentation.
    fn roll(&mut self, column: i64) -> Result<(), TooDeep> {
        if self.flow == 0 && self.indent < column {
            self.indents.push(self.indent);
            self.indent = column;
            self.too_deep(column)?;
        }
        Ok(())
    }

    fn unroll(&mut self, column: i64) {
        if self.flow > 0 {
            return;
        }
        while self.indent > column {
            self.indent = self.indents.pop().unwrap_or(-1);
        }
    }

    fn save_key(&mut self) {
        if self.flow == 0 && self.simple_key_allowed {
            self.key = Some(Key {
                line: self.line,
                column: self.column,
                offset: self.offset,
            });
        }
    }

    /// Spaces, comments and line breaks up to the next token.
    fn skip_to_token(&mut self) {
        loop {
            while self.at(0) == b' '
                || ((self.flow > 0 || !self.simple_key_allowed) && self.at(0) == b'\t')
            {
                self.advance();
            }
            if self.at(0) == b'#' {
                self.skip_line();
            }
            if self.at_end() || self.break_len(0) == 0 {
                return;
            }
            self.advance();
            if self.flow == 0 {
                self.simple_key_allowed = true;
            }
        }
    }

    fn run(mut self) -> Result<(), TooDeep> {
        loop {
            self.skip_to_token();
            if self.at_end() {
                return Ok(());
            }
            // A key not closed by `:` on its line (or within 1024 bytes) is no key.
            if let Some(key) = self.key {
                if key.line < self.line || key.offset + 1024 < self.offset {
                    self.key = None;
                }
            }
            self.unroll(self.column);
            let c = self.at(0);
            if self.column == 0 && c == b'%' {
                self.skip_line();
                continue;
            }
            if self.at_document_marker() {
                self.unroll(-1);
                self.key = None;
                self.simple_key_allowed = false;
                for _ in 0..3 {
                    self.advance();
                }
                continue;
            }
            self.token(c)?;
        }
    }

    fn token(&mut self, c: u8) -> Result<(), TooDeep> {
        match c {
            b'[' | b'{' => {
                self.save_key();
                self.flow += 1;
                self.too_deep(self.column)?;
                self.simple_key_allowed = true;
                self.advance();
            }
            b']' | b'}' => {
                self.flow = self.flow.saturating_sub(1);
                self.simple_key_allowed = false;
                self.advance();
            }
            b',' => {
                self.simple_key_allowed = true;
                self.advance();
            }
            b'-' if self.is_blankz(1) => {
                self.roll(self.column)?;
                self.key = None;
                self.simple_key_allowed = true;
                self.advance();
            }
            b'?' if self.flow > 0 || self.is_blankz(1) => {
                self.roll(self.column)?;
                self.key = None;
                self.simple_key_allowed = self.flow == 0;
                self.advance();
            }
            b':' if self.flow > 0 || self.is_blankz(1) => {
                if let Some(key) = self.key.take().filter(|_| self.flow == 0) {
                    self.roll(key.column)?;
                    self.simple_key_allowed = false;
                } else {
                    self.roll(self.column)?;
                    self.simple_key_allowed = self.flow == 0;
                }
                self.advance();
            }
            b'*' | b'&' | b'!' => {
                self.save_key();
                self.simple_key_allowed = false;
                self.advance();
                if c == b'!' && self.at(0) == b'<' {
                    while !self.at_end() && self.at(0) != b'>' && !self.is_blankz(0) {
                        self.advance();
                    }
                }
                while !self.is_blankz(0) && !matches!(self.at(0), b',' | b'[' | b']' | b'{' | b'}')
                {
                    self.advance();
                }
            }
            b'|' | b'>' if self.flow == 0 => {
                self.key = None;
                self.simple_key_allowed = true;
                self.block_scalar();
            }
            b'\'' | b'"' => {
                self.save_key();
                self.simple_key_allowed = false;
                self.quoted(c);
            }
            _ => {
                self.save_key();
                self.simple_key_allowed = false;
                if self.plain() {
                    self.simple_key_allowed = true;
                }
            }
        }
        Ok(())
    }

    /// A `'…'` or `"…"` scalar; ends early at a document marker, where libyaml stops with an
    /// error.
    fn quoted(&mut self, quote: u8) {
        self.advance();
        loop {
            if self.at_end() || self.at_document_marker() {
                return;
            }
            match self.at(0) {
                b'\'' if quote == b'\'' && self.at(1) == b'\'' => {
                    self.advance();
                    self.advance();
                }
                b'\\' if quote == b'"' => {
                    self.advance();
                    if !self.at_end() {
                        self.advance();
                    }
                }
                c if c == quote => {
                    self.advance();
                    return;
                }
                _ => self.advance(),
            }
        }
    }

    /// A plain scalar, by libyaml's rules; whether it went over a line break.
    fn plain(&mut self) -> bool {
        let indent = self.indent + 1;
        let mut leading_blanks = false;
        loop {
            if self.at_document_marker() || self.at(0) == b'#' {
                break;
            }
            while !self.is_blankz(0) {
                let c = self.at(0);
                let ends = (c == b':' && self.is_blankz(1))
                    || (self.flow > 0
                        && (matches!(c, b',' | b'[' | b']' | b'{' | b'}')
                            || (c == b':'
                                && matches!(self.at(1), b',' | b'?' | b'[' | b']' | b'{' | b'}'))));
                if ends {
                    return leading_blanks;
                }
                self.advance();
            }
            if !self.is_blank(0) && self.break_len(0) == 0 {
                break;
            }
            while self.is_blank(0) || self.break_len(0) > 0 {
                if self.break_len(0) > 0 {
                    leading_blanks = true;
                }
                self.advance();
            }
            if self.flow == 0 && self.column < indent {
                break;
            }
        }
        leading_blanks
    }

    /// A `|` or `>` scalar: its header line, then every line indented at least as far as its
    /// first, by libyaml's rules.
    fn block_scalar(&mut self) {
        self.advance();
        let mut increment = 0;
        for _ in 0..2 {
            match self.at(0) {
                b'+' | b'-' => self.advance(),
                c @ b'1'..=b'9' => {
                    increment = i64::from(c - b'0');
                    self.advance();
                }
                _ => {}
            }
        }
        self.skip_line();
        if self.at_end() {
            return;
        }
        self.advance();
        let mut indent = match increment {
            0 => 0,
            n if self.indent >= 0 => self.indent + n,
            n => n,
        };
        self.block_breaks(&mut indent);
        while self.column == indent && !self.at_end() {
            self.skip_line();
            if self.at_end() {
                return;
            }
            self.advance();
            self.block_breaks(&mut indent);
        }
    }

    /// The indentation and empty lines before a block scalar's next line; the first time
    /// (`indent == 0`), the scalar's indentation is found.
    fn block_breaks(&mut self, indent: &mut i64) {
        let mut max_indent = 0;
        loop {
            while (*indent == 0 || self.column < *indent) && self.at(0) == b' ' {
                self.advance();
            }
            max_indent = max_indent.max(self.column);
            if self.break_len(0) == 0 {
                break;
            }
            self.advance();
        }
        if *indent == 0 {
            *indent = max_indent.max(self.indent + 1).max(1);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn depth_error(text: &str) -> Option<(usize, usize)> {
        check(text).err().map(|e| (e.line, e.column))
    }

    #[test]
    fn flow_and_block_nesting_past_the_limit_is_found_where_it_happens() {
        assert_eq!(depth_error(&"[".repeat(128)), None);
        assert_eq!(depth_error(&"[".repeat(129)), Some((1, 129)));
        assert_eq!(depth_error(&"{a: ".repeat(200)), Some((1, 4 * 128 + 1)));
        let deep = format!("targets: {}{}\n", "[".repeat(100_000), "]".repeat(100_000));
        assert_eq!(depth_error(&deep), Some((1, "targets: ".len() + 128)));
        // Block mappings, one level per line.
        let mut block = String::new();
        for i in 0..200 {
            block.push_str(&" ".repeat(i));
            block.push_str("a:\n");
        }
        assert_eq!(depth_error(&block), Some((129, 129)));
        assert_eq!(depth_error(&"- ".repeat(129)), Some((1, 2 * 128 + 1)));
    }

    #[test]
    fn brackets_in_scalars_and_comments_are_not_nesting() {
        let many = "[".repeat(1000);
        let cases = [
            format!("a: \"{many}\"\n"),
            format!("a: '{many}''{many}'\n"),
            format!("a: \"\\\"{many}\"\n"),
            format!("a: b{many}\n"),
            format!("a: b\n  c {many}\n"),
            format!("- x # {many}\n"),
            format!("a: |\n  {many}\n  {many}\nb: >-\n   {many}\n\n   {many}\nc: 1\n"),
            format!("- |2\n   {many}\n"),
            format!("match: shop-[a-f]*{many}\n"),
            format!("? {{a: '{many}'}}\n: [\"{many}\"]\n"),
        ];
        for text in cases {
            assert_eq!(depth_error(&text), None, "{text}");
        }
    }

    #[test]
    fn a_scalar_does_not_hide_nesting_after_it() {
        let deep = "[".repeat(200);
        let cases = [
            // A quote inside a plain scalar opens nothing.
            format!("a: it's\nb: {deep}\nc: '\n"),
            format!("a: x\n  'y\nb: {deep}\nc: '\n"),
            format!("[a 'b, {deep}\n"),
            // A block scalar ends where its indentation does.
            format!("- a: |\n    text\n  b: {deep}\n"),
            format!("a: |\n text\nb: {deep}\n"),
            // A document marker ends a quoted scalar.
            format!("a: \"x\n---\n{deep}\n"),
            format!("a: #\n  {deep}\n"),
            format!("- - a\n  - {deep}\n"),
        ];
        for text in cases {
            assert!(depth_error(&text).is_some(), "{text}");
        }
    }
}
