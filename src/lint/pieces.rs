//! A large plain rule file, read on every core. Its `groups:` list is cut
//! between groups into one piece per core, and each piece is read as a rule
//! file of its own, with every line at its line number in the file, so
//! positions and findings are those of one read of the whole file.
//!
//! A cut is made only where YAML leaves no doubt that a new group starts:
//! a line at the indentation of the first group's `-`, in a file that is
//! one document whose only top-level key is `groups`. Block scalars and
//! the continuation lines of multi-line scalars are indented deeper than
//! that, so no cut falls inside a group. Anything else (flow style, a
//! second document, another top-level key, an alias across pieces) reads
//! the file whole, as does any piece that fails to read: its message is
//! the whole file's.

/// Files smaller than this are read whole: a thread costs more than it
/// saves below it.
const MIN_BYTES: usize = 64 * 1024;

/// The pieces of `text` to read apart, `parts` of them at most, or `None`
/// when the file is small or not cut safely.
pub fn cut(text: &str, parts: usize) -> Option<Vec<String>> {
    if parts < 2 || text.len() < MIN_BYTES {
        return None;
    }
    let mut lines = Lines::of(text);
    // Leading comments and blank lines, and one `---`, then `groups:`.
    let mut started = false;
    loop {
        let (_, _, line) = lines.next()?;
        let content = line.trim_end();
        if content.is_empty() || content.starts_with('#') {
            continue;
        }
        if content == "---" && !started {
            started = true;
            continue;
        }
        if !is_groups_key(content) {
            return None;
        }
        break;
    }
    // The first group's `-` sets the indentation of every group.
    let indent = loop {
        let (_, _, line) = lines.next()?;
        let trimmed = line.trim_start_matches(' ');
        if trimmed.trim_end().is_empty() || trimmed.starts_with('#') {
            continue;
        }
        if !is_item(trimmed) {
            return None;
        }
        break line.len() - trimmed.len();
    };
    // Every later group start, with its byte offset and line number.
    let mut starts: Vec<(usize, usize)> = Vec::new();
    for (at, number, line) in lines {
        let trimmed = line.trim_start_matches(' ');
        let depth = line.len() - trimmed.len();
        if trimmed.trim_end().is_empty() || trimmed.starts_with('#') {
            continue;
        }
        if depth == 0 && (line.starts_with("---") || line.starts_with("...")) {
            return None;
        }
        if depth < indent || (depth == 0 && !is_item(trimmed)) {
            return None;
        }
        if depth == indent && is_item(trimmed) {
            starts.push((at, number));
        }
    }
    let mut cuts: Vec<(usize, usize)> = Vec::new();
    for k in 1..parts {
        let target = text.len() * k / parts;
        let next = starts
            .iter()
            .find(|(at, _)| *at >= target && cuts.last().is_none_or(|(last, _)| at > last));
        if let Some(&cut) = next {
            cuts.push(cut);
        }
    }
    if cuts.is_empty() {
        return None;
    }
    let mut pieces = Vec::with_capacity(cuts.len() + 1);
    pieces.push(text[..cuts[0].0].to_string());
    for (i, &(at, number)) in cuts.iter().enumerate() {
        let end = cuts.get(i + 1).map_or(text.len(), |(next, _)| *next);
        let mut piece = String::with_capacity(end - at + number + 8);
        piece.push_str("groups:\n");
        piece.extend(std::iter::repeat_n('\n', number - 2));
        piece.push_str(&text[at..end]);
        pieces.push(piece);
    }
    Some(pieces)
}

/// `groups:`, with nothing after it but a comment.
fn is_groups_key(line: &str) -> bool {
    line.strip_prefix("groups:")
        .is_some_and(|rest| rest.trim().is_empty() || rest.trim_start().starts_with('#'))
}

/// A block sequence entry: `-` followed by a space or the line's end.
fn is_item(trimmed: &str) -> bool {
    trimmed
        .strip_prefix('-')
        .is_some_and(|rest| rest.is_empty() || rest.starts_with([' ', '\r', '\n']))
}

/// The lines of a text, each with its byte offset and 1-based number.
struct Lines<'a> {
    text: &'a str,
    at: usize,
    number: usize,
}

impl<'a> Lines<'a> {
    fn of(text: &'a str) -> Lines<'a> {
        Lines {
            text,
            at: 0,
            number: 0,
        }
    }
}

impl<'a> Iterator for Lines<'a> {
    type Item = (usize, usize, &'a str);

    fn next(&mut self) -> Option<Self::Item> {
        if self.at >= self.text.len() {
            return None;
        }
        let rest = &self.text[self.at..];
        let len = rest.find('\n').map_or(rest.len(), |n| n + 1);
        let line = &rest[..len];
        let at = self.at;
        self.at += len;
        self.number += 1;
        Some((at, self.number, line.trim_end_matches(['\n', '\r'])))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rules(groups: usize, indent: &str) -> String {
        let mut text = String::from("# comment\ngroups:\n");
        for g in 0..groups {
            text.push_str(&format!(
                "{indent}- name: g{g}\n{indent}  rules:\n{indent}  - alert: A{g}\n{indent}    expr: |\n{indent}      up == 0\n\n{indent}      - not a group\n{indent}    annotations:\n{indent}      summary: \"x\"\n"
            ));
        }
        text
    }

    /// Every piece keeps each line at its number (later pieces open with
    /// `groups:` and blank lines up to their first group), and the pieces
    /// together hold the whole file.
    #[test]
    fn pieces_keep_line_numbers() {
        for indent in ["", "  "] {
            let text = rules(2000, indent);
            let pieces = cut(&text, 3).expect("cut");
            assert_eq!(pieces.len(), 3);
            let lines: Vec<&str> = text.lines().collect();
            let mut whole = pieces[0].clone();
            for piece in &pieces[1..] {
                let body = piece.strip_prefix("groups:\n").expect("opens with groups:");
                let own = body.trim_start_matches('\n');
                let first = piece.len() - own.len();
                let number = piece[..first].matches('\n').count() + 1;
                assert_eq!(own.lines().next(), Some(lines[number - 1]));
                for (n, line) in own.lines().enumerate() {
                    assert_eq!(line, lines[number - 1 + n]);
                }
                whole.push_str(own);
            }
            assert_eq!(whole, text);
        }
    }

    #[test]
    fn small_or_unusual_files_are_read_whole() {
        assert!(cut(&rules(10, "  "), 2).is_none(), "small");
        let big = rules(2000, "  ");
        assert!(cut(&big, 1).is_none(), "one core");
        for unusual in [
            format!("kind: X\n{big}"),
            format!("{big}---\ngroups: []\n"),
            format!("{big}other: 1\n"),
            format!("groups: [\n{}]", "x,\n".repeat(40_000)),
        ] {
            assert!(cut(&unusual, 2).is_none(), "{}", &unusual[..40]);
        }
        let commented = big
            .replacen("groups:\n", "groups: # all\n", 1)
            .replace("  - name", "  -   name");
        assert!(
            cut(&commented, 2).is_some(),
            "a comment after groups: still cuts"
        );
    }
}
