//! Colours of the command's output: on a terminal only, and never with NO_COLOR set
//! (<https://no-color.org>), drawn by `console`.

use console::Style;

/// What a piece of output says, and so its colour.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Tone {
    /// Held, passed, ready (green).
    Good,
    /// A whole run or lab that passed or came up (bold green).
    GoodStrong,
    /// Failed (red).
    Bad,
    /// A failed trial, a run that failed (bold red).
    BadStrong,
    /// Ignored, missing, undecided (yellow).
    Unsure,
    /// Stopped before it ended (magenta).
    Stopped,
    /// A run that was interrupted (bold magenta).
    StoppedStrong,
    /// A name to find in the output (bold).
    Strong,
}

impl Tone {
    fn style(self) -> Style {
        match self {
            Tone::Good => Style::new().green(),
            Tone::GoodStrong => Style::new().green().bold(),
            Tone::Bad => Style::new().red(),
            Tone::BadStrong => Style::new().red().bold(),
            Tone::Unsure => Style::new().yellow(),
            Tone::Stopped => Style::new().magenta(),
            Tone::StoppedStrong => Style::new().magenta().bold(),
            Tone::Strong => Style::new().bold(),
        }
    }
}

/// Paints standard output's text, when standard output is a terminal and NO_COLOR is not set.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Paint {
    on: bool,
}

impl Paint {
    /// Decides once, for the whole command.
    pub(crate) fn new() -> Paint {
        let no_color = std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty());
        Paint { on: !no_color && console::colors_enabled() }
    }

    /// `text` in the colour of `tone` (unchanged when colours are off).
    pub(crate) fn paint(&self, tone: Tone, text: &str) -> String {
        tone.style().force_styling(self.on).apply_to(text).to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::{Paint, Tone};

    #[test]
    fn off_leaves_the_text_alone_and_on_colours_it() {
        assert_eq!(Paint { on: false }.paint(Tone::BadStrong, "FAIL"), "FAIL");
        assert_eq!(Paint { on: true }.paint(Tone::Good, "ok"), "\x1b[32mok\x1b[0m");
        assert_eq!(Paint { on: true }.paint(Tone::BadStrong, "FAIL"), "\x1b[31m\x1b[1mFAIL\x1b[0m");
    }
}
