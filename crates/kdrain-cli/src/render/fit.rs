//! Fitting lines to the terminal: a line is a head plus parts ranked by how useful they are;
//! when it is too wide the least useful parts go first, then the head's text is shortened with
//! an ellipsis. Long plain lines are wrapped at word boundaries instead of by the terminal.

/// Display width of `text` in terminal columns (ANSI codes ignored).
pub fn width(text: &str) -> usize {
    console::measure_text_width(text)
}

/// The terminal's width in columns (stderr, where the live view draws), or 80 when unknown.
pub fn terminal_width() -> usize {
    console::Term::stderr()
        .size_checked()
        .map(|(_, cols)| usize::from(cols))
        .filter(|&c| c > 0)
        .unwrap_or(80)
}

/// One part of a line after its head, joined with " · ".
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Part {
    /// The text.
    pub text: String,
    /// Higher is more useful: lower ranks are dropped first.
    pub rank: u8,
}

impl Part {
    /// A part of rank `rank`.
    pub fn new(text: impl Into<String>, rank: u8) -> Self {
        Part {
            text: text.into(),
            rank,
        }
    }
}

const SEP: &str = " · ";

/// `head` then the parts that fit in `columns`, dropping the lowest ranks first (the later
/// part first among equals); if the head alone is too wide it is cut with "…".
pub fn fit(head: &str, parts: &[Part], columns: usize) -> String {
    let mut kept: Vec<&Part> = parts.iter().collect();
    loop {
        let line = join(head, &kept);
        if width(&line) <= columns {
            return line;
        }
        let Some(drop) = kept
            .iter()
            .enumerate()
            .min_by_key(|(i, p)| (p.rank, usize::MAX - i))
            .map(|(i, _)| i)
        else {
            return truncate(head, columns);
        };
        kept.remove(drop);
    }
}

fn join(head: &str, parts: &[&Part]) -> String {
    let mut line = head.to_string();
    for p in parts {
        line.push_str(SEP);
        line.push_str(&p.text);
    }
    line
}

/// `text` cut to `columns`, ending in "…" when cut.
pub fn truncate(text: &str, columns: usize) -> String {
    if width(text) <= columns {
        return text.to_string();
    }
    if columns == 0 {
        return String::new();
    }
    let mut out = String::new();
    for c in text.chars() {
        let next = format!("{out}{c}");
        if width(&next) + 1 > columns {
            break;
        }
        out = next;
    }
    out.push('…');
    out
}

/// `text` wrapped at spaces into lines of at most `columns`; continuation lines start with
/// `indent`. A word longer than a line is cut.
pub fn wrap(text: &str, columns: usize, indent: &str) -> Vec<String> {
    let mut lines: Vec<String> = Vec::new();
    let mut line = String::new();
    for word in text.split(' ') {
        let start = if lines.is_empty() { "" } else { indent };
        let candidate = if line.is_empty() {
            format!("{start}{word}")
        } else {
            format!("{line} {word}")
        };
        if width(&candidate) <= columns || line.is_empty() {
            line = candidate;
        } else {
            lines.push(std::mem::take(&mut line));
            line = format!("{indent}{word}");
        }
    }
    lines.push(line);
    lines.into_iter().map(|l| truncate(&l, columns)).collect()
}

/// `[=====>    ]`, `cells` wide inside the brackets.
pub fn bar(position: u64, length: u64, cells: usize) -> String {
    let filled = if length == 0 {
        0
    } else {
        ((position.min(length) as f64 / length as f64) * cells as f64).floor() as usize
    };
    let mut inner = "=".repeat(filled);
    if filled < cells {
        inner.push('>');
        inner.push_str(&" ".repeat(cells - filled - 1));
    }
    if position == 0 {
        inner = " ".repeat(cells);
    }
    format!("[{inner}]")
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn least_useful_parts_go_first() {
        let parts = [
            Part::new("waits for budget web: needs 3 has 4", 9),
            Part::new("held back", 2),
            Part::new("since 2.8s", 5),
        ];
        let head = "  blocked  shop/web-1";
        assert_eq!(
            fit(head, &parts, 200),
            "  blocked  shop/web-1 · waits for budget web: needs 3 has 4 · held back · since 2.8s"
        );
        assert_eq!(
            fit(head, &parts, 72),
            "  blocked  shop/web-1 · waits for budget web: needs 3 has 4 · since 2.8s"
        );
        assert_eq!(
            fit(head, &parts, 60),
            "  blocked  shop/web-1 · waits for budget web: needs 3 has 4"
        );
        assert_eq!(fit(head, &parts, 12), "  blocked  …");
    }

    #[test]
    fn wrapping_keeps_words_whole() {
        assert_eq!(
            wrap("kubesim is serving --delete-emptydir-data", 24, "  "),
            ["kubesim is serving", "  --delete-emptydir-data"]
        );
        assert_eq!(wrap("short", 80, "  "), ["short"]);
    }

    #[test]
    fn bars() {
        assert_eq!(bar(0, 6, 10), "[          ]");
        assert_eq!(bar(3, 6, 10), "[=====>    ]");
        assert_eq!(bar(6, 6, 10), "[==========]");
        assert_eq!(bar(1, 0, 4), "[>   ]");
    }

    proptest! {
        #[test]
        fn fitted_lines_never_exceed_the_width(
            head in "[a-z/ ·…-]{0,60}",
            parts in proptest::collection::vec(("[a-z0-9 :·]{0,50}", 0u8..10), 0..6),
            columns in 1usize..200,
        ) {
            let parts: Vec<Part> = parts.into_iter().map(|(t, r)| Part::new(t, r)).collect();
            prop_assert!(width(&fit(&head, &parts, columns)) <= columns);
        }

        #[test]
        fn wrapped_lines_never_exceed_the_width(
            text in "[a-z-]{0,30}( [a-z-]{0,30}){0,10}",
            columns in 4usize..120,
        ) {
            for line in wrap(&text, columns, "  ") {
                prop_assert!(width(&line) <= columns, "{line:?}");
            }
        }
    }
}
