//! Terminal output: colour only on a terminal, and a progress bar.

use std::io::IsTerminal;

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
