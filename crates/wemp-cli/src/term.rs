//! Terminal output: colour only on a terminal, columns measured in terminal cells, and a
//! progress bar.

use std::io::IsTerminal;

pub mod logging;

/// When to colour output.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum ColorChoice {
    /// On a terminal, unless `NO_COLOR` is set.
    #[default]
    Auto,
    /// Always.
    Always,
    /// Never.
    Never,
}

/// ANSI styling that is a no-op when disabled.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Style {
    enabled: bool,
}

impl Style {
    /// Styling for standard output under `choice`.
    pub fn for_stdout(choice: ColorChoice) -> Self {
        Self::new(choice, std::io::stdout().is_terminal())
    }

    /// Styling under `choice` for a stream that is (or is not) a terminal.
    pub fn new(choice: ColorChoice, is_terminal: bool) -> Self {
        let enabled = match choice {
            ColorChoice::Always => true,
            ColorChoice::Never => false,
            ColorChoice::Auto => is_terminal && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty()),
        };
        Self { enabled }
    }

    /// Whether styling is on.
    pub const fn enabled(self) -> bool {
        self.enabled
    }

    /// No styling.
    pub const fn plain() -> Self {
        Self { enabled: false }
    }

    fn paint(self, code: &str, s: &str) -> String {
        if self.enabled { format!("\x1b[{code}m{s}\x1b[0m") } else { s.to_owned() }
    }

    /// Bold.
    pub fn bold(self, s: &str) -> String {
        self.paint("1", s)
    }
    /// Dim.
    pub fn dim(self, s: &str) -> String {
        self.paint("2", s)
    }
    /// Green.
    pub fn green(self, s: &str) -> String {
        self.paint("32", s)
    }
    /// Red.
    pub fn red(self, s: &str) -> String {
        self.paint("31", s)
    }
    /// Yellow.
    pub fn yellow(self, s: &str) -> String {
        self.paint("33", s)
    }
}

/// A one-line progress bar on standard error, drawn only when it is a terminal.
#[derive(Debug)]
pub struct Progress {
    enabled: bool,
    width: usize,
}

impl Progress {
    /// A bar that draws only when standard error is a terminal.
    pub fn stderr() -> Self {
        Self { enabled: std::io::stderr().is_terminal(), width: 30 }
    }

    /// Draws `fraction` (0..=1) with a label.
    pub fn draw(&self, fraction: f64, label: &str) {
        if !self.enabled {
            return;
        }
        let filled = ((fraction.clamp(0.0, 1.0)) * self.width as f64).round() as usize;
        eprint!("\r[{}{}] {label}\x1b[K", "#".repeat(filled), "-".repeat(self.width - filled));
    }

    /// Clears the bar.
    pub fn finish(&self) {
        if self.enabled {
            eprint!("\r\x1b[K");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn colour_follows_the_choice_and_the_terminal() {
        assert_eq!(Style::new(ColorChoice::Never, true).red("x"), "x");
        assert_eq!(Style::new(ColorChoice::Always, false).red("x"), "\x1b[31mx\x1b[0m");
        assert_eq!(Style::new(ColorChoice::Auto, false).green("x"), "x");
    }
}

/// The width of a character in terminal cells: 0 for combining marks, zero-width and
/// format characters (and controls, which [`cell`] escapes first), 2 for East Asian wide and
/// fullwidth characters (CJK ideographs and punctuation, kana, Hangul, fullwidth forms) and
/// emoji shown as pictures, 1 for the rest. The ranges follow Unicode's East Asian Width
/// (`W`/`F`) and zero-width classes closely enough for the text WeChat users write; they
/// are not the whole table.
pub fn char_width(c: char) -> usize {
    let u = u32::from(c);
    let zero = matches!(u,
        0x0000..=0x001F | 0x007F..=0x009F | 0x00AD | 0x0300..=0x036F | 0x0483..=0x0489
        | 0x0591..=0x05BD | 0x0610..=0x061A | 0x064B..=0x065F | 0x0E31 | 0x0E34..=0x0E3A
        | 0x0E47..=0x0E4E | 0x1AB0..=0x1AFF | 0x1DC0..=0x1DFF | 0x200B..=0x200F | 0x2028..=0x202E
        | 0x2060..=0x2064 | 0x20D0..=0x20FF | 0x302A..=0x302D | 0x3099..=0x309A | 0xFE00..=0xFE0F
        | 0xFE20..=0xFE2F | 0xFEFF | 0xE0000..=0xE007F | 0xE0100..=0xE01EF);
    if zero {
        return 0;
    }
    let wide = matches!(u,
        0x1100..=0x115F | 0x231A..=0x231B | 0x2329..=0x232A | 0x23E9..=0x23EC | 0x23F0 | 0x23F3
        | 0x25FD..=0x25FE | 0x2614..=0x2615 | 0x2648..=0x2653 | 0x267F | 0x2693 | 0x26A1
        | 0x26AA..=0x26AB | 0x26BD..=0x26BE | 0x26C4..=0x26C5 | 0x26CE | 0x26D4 | 0x26EA
        | 0x26F2..=0x26F3 | 0x26F5 | 0x26FA | 0x26FD | 0x2705 | 0x270A..=0x270B | 0x2728 | 0x274C
        | 0x274E | 0x2753..=0x2755 | 0x2757 | 0x2795..=0x2797 | 0x27B0 | 0x27BF | 0x2B1B..=0x2B1C
        | 0x2B50 | 0x2B55 | 0x2E80..=0x303E | 0x3041..=0x3247 | 0x3250..=0x4DBF | 0x4E00..=0xA4CF
        | 0xA960..=0xA97F | 0xAC00..=0xD7A3 | 0xF900..=0xFAFF | 0xFE10..=0xFE19 | 0xFE30..=0xFE6F
        | 0xFF00..=0xFF60 | 0xFFE0..=0xFFE6 | 0x16FE0..=0x18D08 | 0x1B000..=0x1B2FB | 0x1F004
        | 0x1F0CF | 0x1F18E | 0x1F191..=0x1F19A | 0x1F200..=0x1F251 | 0x1F300..=0x1F320
        | 0x1F32D..=0x1F335 | 0x1F337..=0x1F37C | 0x1F37E..=0x1F393 | 0x1F3A0..=0x1F3CA
        | 0x1F3CF..=0x1F3D3 | 0x1F3E0..=0x1F3F0 | 0x1F3F4 | 0x1F3F8..=0x1F43E | 0x1F440
        | 0x1F442..=0x1F4FC | 0x1F4FF..=0x1F53D | 0x1F54B..=0x1F54E | 0x1F550..=0x1F567 | 0x1F57A
        | 0x1F595..=0x1F596 | 0x1F5A4 | 0x1F5FB..=0x1F64F | 0x1F680..=0x1F6C5 | 0x1F6CC
        | 0x1F6D0..=0x1F6D2 | 0x1F6D5..=0x1F6D7 | 0x1F6DC..=0x1F6DF | 0x1F6EB..=0x1F6EC
        | 0x1F6F4..=0x1F6FC | 0x1F7E0..=0x1F7EB | 0x1F7F0 | 0x1F90C..=0x1F93A | 0x1F93C..=0x1F945
        | 0x1F947..=0x1F9FF | 0x1FA70..=0x1FAFF | 0x20000..=0x2FFFD | 0x30000..=0x3FFFD);
    if wide { 2 } else { 1 }
}

/// The width of `s` in terminal cells (see [`char_width`]).
pub fn display_width(s: &str) -> usize {
    s.chars().map(char_width).sum()
}

/// `s` followed by spaces up to `width` cells (at least one space).
pub fn pad(s: &str, width: usize) -> String {
    let w = display_width(s);
    format!("{s}{}", " ".repeat(width.saturating_sub(w).max(1)))
}

/// `s` on one line in at most `width` cells: a line break becomes ` ⏎ `, another control
/// character its escape (`\t`, `\u{0}`), and text that does not fit is cut at a character
/// boundary and ends in `…`. A wide character is never split, so the result may be one cell
/// short of `width`.
pub fn clip(s: &str, width: usize) -> String {
    let mut one_line = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '\n' => one_line.push_str(" ⏎ "),
            '\r' => {}
            c if c.is_control() => one_line.extend(c.escape_default()),
            c => one_line.push(c),
        }
    }
    if display_width(&one_line) <= width {
        return one_line;
    }
    let mut out = String::new();
    let mut used = 0;
    for c in one_line.chars() {
        let w = char_width(c);
        if used + w + 1 > width {
            break;
        }
        out.push(c);
        used += w;
    }
    out.push('…');
    out
}

/// [`clip`] to `width` cells, then [`pad`] to `width` (so the next column starts in the
/// same place whatever script the text is in).
pub fn cell(s: &str, width: usize) -> String {
    let clipped = clip(s, width);
    let w = display_width(&clipped);
    format!("{clipped}{}", " ".repeat(width.saturating_sub(w)))
}

#[cfg(test)]
mod width_tests {
    use super::*;

    #[test]
    fn wide_characters_take_two_cells_and_marks_none() {
        assert_eq!(display_width("Token"), 5);
        assert_eq!(display_width("消息加解密方式"), 14);
        assert_eq!(display_width("服务器地址（URL）"), 17);
        assert_eq!(display_width("服务器地址(URL)"), 15);
        assert_eq!(display_width("こんにちは한국"), 14);
        assert_eq!(display_width("👍🎉"), 4);
        assert_eq!(display_width("e\u{301}"), 1, "a combining accent takes no cell");
        assert_eq!(display_width("a\u{200b}b"), 2, "a zero-width space takes no cell");
        assert_eq!(pad("URL", 16), format!("URL{}", " ".repeat(13)));
        assert_eq!(pad("令牌（Token）", 18), "令牌（Token）     ");
    }

    #[test]
    fn clip_and_cell_measure_cells_not_characters() {
        assert_eq!(clip("订单查询", 8), "订单查询");
        assert_eq!(clip("订单查询一下", 8), "订单查…");
        assert_eq!(display_width(&clip("订单查询一下", 8)), 7);
        assert_eq!(clip("abcdefghij", 5), "abcd…");
        assert_eq!(clip("a\nb\tc\0", 20), "a ⏎ b\\tc\\u{0}");
        for s in ["订单 42", "help", "订单查询一下午", "👍 ok"] {
            assert_eq!(display_width(&cell(s, 8)), 8, "{s:?}");
        }
    }
}
