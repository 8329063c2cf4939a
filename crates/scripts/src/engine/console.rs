//! The log of one invocation: `console.*` lines kept in order, capped at a
//! byte budget, with one final "(log truncated)" line once the cap is hit.

use super::LogLine;

/// The line added once the budget is spent.
pub(crate) const TRUNCATED: &str = "(log truncated)";

/// Collected `console` output of one invocation.
#[derive(Debug)]
pub(crate) struct LogBuffer {
    lines: Vec<LogLine>,
    used: usize,
    limit: usize,
    truncated: bool,
}

impl LogBuffer {
    /// A buffer that keeps at most `limit` bytes of messages.
    pub(crate) fn new(limit: usize) -> Self {
        Self { lines: Vec::new(), used: 0, limit, truncated: false }
    }

    /// Adds one line; past the budget the line is cut at a character
    /// boundary, the truncation line is added, and later lines are dropped.
    pub(crate) fn push(&mut self, level: &str, message: &str) {
        if self.truncated {
            return;
        }
        let room = self.limit - self.used;
        if message.len() <= room {
            self.used += message.len();
            self.lines.push(LogLine { level: level.to_owned(), message: message.to_owned() });
            return;
        }
        let mut cut = room;
        while !message.is_char_boundary(cut) {
            cut -= 1;
        }
        if cut > 0 {
            self.used += cut;
            self.lines.push(LogLine { level: level.to_owned(), message: message[..cut].to_owned() });
        }
        self.lines.push(LogLine { level: "warn".to_owned(), message: TRUNCATED.to_owned() });
        self.truncated = true;
    }

    /// The lines so far, leaving the buffer empty (and still capped).
    pub(crate) fn take(&mut self) -> Vec<LogLine> {
        std::mem::take(&mut self.lines)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_lines_until_the_budget_then_marks_truncation() {
        let mut log = LogBuffer::new(10);
        log.push("log", "hello");
        log.push("warn", "wörld!");
        log.push("log", "dropped");
        let lines = log.take();
        let got: Vec<(&str, &str)> = lines.iter().map(|l| (l.level.as_str(), l.message.as_str())).collect();
        // "wörld!" is 7 bytes ("ö" takes 2); 5 fit.
        assert_eq!(got, vec![("log", "hello"), ("warn", "wörl"), ("warn", TRUNCATED)]);
        let mut log = LogBuffer::new(3);
        log.push("log", "ö\u{e9}");
        assert_eq!(log.take()[0].message, "ö");
        let mut log = LogBuffer::new(1);
        log.push("log", "ö");
        assert_eq!(log.take()[0].message, TRUNCATED);
    }

    #[test]
    fn exact_fit_is_not_truncated() {
        let mut log = LogBuffer::new(5);
        log.push("log", "12345");
        assert_eq!(log.take().len(), 1);
        log.push("log", "");
        assert_eq!(log.take().len(), 1);
    }
}
