//! Where a scenario file is wrong: `FILE:LINE:COLUMN: MESSAGE` errors and byte-offset to
//! line/column conversion.

use std::fmt;
use std::ops::Range;
use std::path::{Path, PathBuf};

/// A place in a scenario file: 1-based line and column (the column counts characters).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Location {
    /// The file, as it was given to [`crate::scenario::load`].
    pub file: PathBuf,
    /// Line, starting at 1.
    pub line: usize,
    /// Column in characters, starting at 1.
    pub column: usize,
}

impl Location {
    /// The location of byte `offset` in `src` (clamped to the end of the text).
    pub fn at(file: &Path, src: &str, offset: usize) -> Self {
        let (line, column) = line_col(src, offset);
        Self { file: file.to_path_buf(), line, column }
    }
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}:{}", self.file.display(), self.line, self.column)
    }
}

/// A scenario file that cannot be used. Its `Display` is exactly `FILE:LINE:COL: MESSAGE`, where
/// the message says what was found and what was expected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{location}: {message}")]
pub struct ScenarioError {
    /// Where the problem is.
    pub location: Location,
    /// What was found and what was expected.
    pub message: String,
}

impl ScenarioError {
    /// An error at byte `offset` of `src`.
    pub(crate) fn at(file: &Path, src: &str, offset: usize, message: impl Into<String>) -> Self {
        Self { location: Location::at(file, src, offset), message: message.into() }
    }

    /// An error about the file as a whole (reading it), placed at 1:1.
    pub(crate) fn file(file: &Path, message: impl Into<String>) -> Self {
        Self { location: Location { file: file.to_path_buf(), line: 1, column: 1 }, message: message.into() }
    }
}

/// 1-based line and character column of byte `offset` in `src`. An offset inside a multi-byte
/// character counts as that character; one past the end is the position after the last one.
pub fn line_col(src: &str, offset: usize) -> (usize, usize) {
    let mut offset = offset.min(src.len());
    while !src.is_char_boundary(offset) {
        offset -= 1;
    }
    let before = &src[..offset];
    let line = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    let column = before[line_start..].chars().count() + 1;
    (line, column)
}

/// The part of `span` that lies in `src`, for spans a parser may report past the end.
pub(crate) fn clamp(src: &str, span: &Range<usize>) -> Range<usize> {
    span.start.min(src.len())..span.end.min(src.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offsets_to_line_and_column() {
        let src = "a = 1\nbé = \"x\"\n";
        assert_eq!(line_col(src, 0), (1, 1));
        assert_eq!(line_col(src, 4), (1, 5));
        assert_eq!(line_col(src, 6), (2, 1));
        // 'é' is two bytes but one column: the '=' after "bé " is column 4.
        assert_eq!(line_col(src, 10), (2, 4));
        // Inside the two bytes of 'é': the column of 'é'.
        assert_eq!(line_col(src, 8), (2, 2));
        assert_eq!(line_col(src, src.len()), (3, 1));
        assert_eq!(line_col(src, 1000), (3, 1));
        assert_eq!(line_col("", 0), (1, 1));
    }

    #[test]
    fn display_is_file_line_column_message() {
        let e = ScenarioError::at(Path::new("scenarios/x.toml"), "a\nbc", 3, "bad");
        assert_eq!(e.to_string(), "scenarios/x.toml:2:2: bad");
    }
}
