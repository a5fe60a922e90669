//! One line for an error and its causes, below every error type of the crate.

/// Renders an error with its whole cause chain on one line, leaving out a cause whose text the
/// message already shows (nslab's messages carry their OS error; others' may not).
pub fn chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut s = e.to_string();
    let mut cur = e.source();
    while let Some(c) = cur {
        let text = c.to_string();
        if !text.is_empty() && !s.contains(&text) {
            s.push_str(": ");
            s.push_str(&text);
        }
        cur = c.source();
    }
    s
}
