//! Binding `<mod>` markers to ϕ vectors.
//!
//! The agent writes `<mod>` after every argument of a vision call, e.g.
//! `generate(encode(scan_1 <mod>) <mod>)`, and produces one ϕ per marker. Before the step is
//! compiled, the n-th marker (counting from 0, outside strings and comments) becomes the extra
//! argument `, __phi(n)`, which yields the n-th ϕ of the step:
//! `generate(encode(scan_1 , __phi(0)) , __phi(1))`. The vision functions then see their ϕ as
//! ordinary arguments and can check that each has the right number. Markers are matched
//! without regard to ASCII case (`<MOD>` too).
//!
//! Line numbers are unchanged by the rewrite; [`Rewritten::original_column`] maps columns of
//! the rewritten code back to the code as written, for error messages.

/// The name of the function a marker turns into.
pub(crate) const PHI_FN: &str = "__phi";
const MARKER: &str = protocol::MOD_MARKER;

/// A step's code with its markers replaced.
#[derive(Debug, Clone)]
pub(crate) struct Rewritten {
    /// The code to compile.
    pub code: String,
    /// How many markers there were.
    pub markers: usize,
    /// Whether the code ends in code, not inside a string, a character or a comment (a
    /// marker written next would count).
    pub ends_in_code: bool,
    /// For each replaced marker: line (1-based), first and one-past-last column of the
    /// replacement in the rewritten code (1-based), and how many characters the line had
    /// grown by after it.
    shifts: Vec<Shift>,
}

#[derive(Debug, Clone, Copy)]
struct Shift {
    line: usize,
    start: usize,
    end: usize,
    grown_after: usize,
}

impl Rewritten {
    /// The column in the code as written that corresponds to `column` of `line` in the
    /// rewritten code. Columns inside a replacement map to the marker's first column.
    pub(crate) fn original_column(&self, line: usize, column: usize) -> usize {
        let mut grown = 0usize;
        for s in self.shifts.iter().filter(|s| s.line == line) {
            if column >= s.end {
                grown = s.grown_after;
            } else if column >= s.start {
                return (s.start - grown).max(1);
            } else {
                break;
            }
        }
        column.saturating_sub(grown).max(1)
    }
}

#[derive(Clone, Copy, PartialEq)]
enum Lex {
    Code,
    LineComment,
    BlockComment(usize),
    Str,
    /// A raw string `#"..."#` opened with this many `#`.
    RawStr(usize),
    Backtick,
    Char,
}

/// Replaces every `<mod>` outside strings, characters and comments.
pub(crate) fn rewrite(code: &str) -> Rewritten {
    let mut out = String::with_capacity(code.len() + 16);
    let mut markers = 0usize;
    let mut shifts = Vec::new();
    let mut state = Lex::Code;
    let (mut line, mut col_out, mut grown) = (1usize, 1usize, 0usize);
    let mut i = 0usize;
    while i < code.len() {
        let rest = &code[i..];
        // Safe to index: `i` only ever advances by whole characters.
        let c = rest.chars().next().unwrap_or('\0');
        let next = rest[c.len_utf8()..].chars().next();
        match state {
            Lex::Code => {
                if rest.len() >= MARKER.len()
                    && rest.as_bytes()[..MARKER.len()].eq_ignore_ascii_case(MARKER.as_bytes())
                {
                    let rep = format!(", {PHI_FN}({markers})");
                    markers += 1;
                    let start = col_out;
                    col_out += rep.len();
                    grown += rep.len() - MARKER.len();
                    out.push_str(&rep);
                    shifts.push(Shift {
                        line,
                        start,
                        end: col_out,
                        grown_after: grown,
                    });
                    i += MARKER.len();
                    continue;
                }
                match (c, next) {
                    ('/', Some('/')) => state = Lex::LineComment,
                    ('/', Some('*')) => {
                        state = Lex::BlockComment(1);
                        out.push_str("/*");
                        col_out += 2;
                        i += 2;
                        continue;
                    }
                    ('#', Some('#' | '"')) => {
                        let hashes = rest.bytes().take_while(|&b| b == b'#').count();
                        if rest.as_bytes().get(hashes) == Some(&b'"') {
                            state = Lex::RawStr(hashes);
                            out.push_str(&rest[..=hashes]);
                            col_out += hashes + 1;
                            i += hashes + 1;
                            continue;
                        }
                    }
                    ('"', _) => state = Lex::Str,
                    ('`', _) => state = Lex::Backtick,
                    ('\'', _) => state = Lex::Char,
                    _ => {}
                }
            }
            Lex::LineComment => {
                if c == '\n' {
                    state = Lex::Code;
                }
            }
            Lex::BlockComment(depth) => match (c, next) {
                // Rhai block comments nest.
                ('/', Some('*')) | ('*', Some('/')) => {
                    let d = if c == '/' { depth + 1 } else { depth - 1 };
                    state = if d == 0 {
                        Lex::Code
                    } else {
                        Lex::BlockComment(d)
                    };
                    out.push(c);
                    out.push(next.unwrap_or(' '));
                    col_out += 2;
                    i += 2;
                    continue;
                }
                _ => {}
            },
            Lex::RawStr(hashes) => {
                let closing =
                    rest.len() > hashes && rest.as_bytes()[1..=hashes].iter().all(|&b| b == b'#');
                if c == '"' && closing {
                    state = Lex::Code;
                    out.push_str(&rest[..=hashes]);
                    col_out += hashes + 1;
                    i += hashes + 1;
                    continue;
                }
            }
            Lex::Str | Lex::Char | Lex::Backtick => {
                let close = match state {
                    Lex::Str => '"',
                    Lex::Char => '\'',
                    _ => '`',
                };
                if c == '\\' && state != Lex::Backtick {
                    // An escape: copy it and the escaped character verbatim.
                    out.push(c);
                    col_out += 1;
                    i += 1;
                    if let Some(n) = next {
                        out.push(n);
                        col_out += 1;
                        i += n.len_utf8();
                        if n == '\n' {
                            line += 1;
                            col_out = 1;
                            grown = 0;
                        }
                    }
                    continue;
                }
                if c == close {
                    state = Lex::Code;
                }
            }
        }
        out.push(c);
        i += c.len_utf8();
        if c == '\n' {
            line += 1;
            col_out = 1;
            grown = 0;
        } else {
            col_out += 1;
        }
    }
    Rewritten {
        code: out,
        markers,
        ends_in_code: state == Lex::Code,
        shifts,
    }
}

/// Whether a `<mod>` marker written right after `code` (the start of a step) would count as a
/// marker, i.e. `code` does not end inside a string, a character literal or a comment. The agent
/// is kept from writing markers elsewhere: each one it writes brings a ϕ, and one the runtime
/// does not count would leave the step with more ϕ than markers.
pub fn marker_counts_after(code: &str) -> bool {
    rewrite(code).ends_in_code
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn markers_become_numbered_phi_arguments() {
        let r = rewrite("let m = generate(encode(scan_1 <mod>) <MOD>);");
        assert_eq!(r.markers, 2);
        assert_eq!(
            r.code,
            "let m = generate(encode(scan_1 , __phi(0)) , __phi(1));"
        );
    }

    #[test]
    fn strings_and_comments_are_left_alone() {
        let code =
            "// <mod>\nlet s = \"<mod>\"; /* <mod> /* <mod> */ */ let c = `<mod>`; encode(x <mod>)";
        let r = rewrite(code);
        assert_eq!(r.markers, 1);
        assert!(r
            .code
            .starts_with("// <mod>\nlet s = \"<mod>\"; /* <mod> /* <mod> */ */ let c = `<mod>`;"));
        assert!(r.code.ends_with("encode(x , __phi(0))"));
    }

    #[test]
    fn raw_strings_are_strings() {
        let r = rewrite(
            "let s = #\"a \" <mod> \"#; let t = ##\"x\"# <mod>\"##; let m = #{a: 1}; f(x <mod>)",
        );
        assert_eq!(r.markers, 1);
        assert!(
            r.code.ends_with("let m = #{a: 1}; f(x , __phi(0))"),
            "{}",
            r.code
        );
    }

    #[test]
    fn a_marker_counts_only_after_code() {
        assert!(marker_counts_after(""));
        assert!(marker_counts_after(
            "let m = generate(e /* left hippocampus */ "
        ));
        assert!(marker_counts_after("let s = \"a\\\"b\"; encode(scan_1 "));
        assert!(!marker_counts_after("respond(\"Segmented "));
        assert!(!marker_counts_after("let m = generate(e /* left hippo"));
        assert!(!marker_counts_after("let m = generate(e /* a /* b */ "));
        assert!(!marker_counts_after("// note "));
        assert!(marker_counts_after("// note\nencode(x "));
        assert!(!marker_counts_after("let s = #\"raw "));
        // What it says agrees with the rewrite: a marker after a prefix counts exactly when
        // the prefix ends in code.
        for prefix in ["f(\"", "f(/* ", "f(x ", "f('", "f(`", "f(\"a\" "] {
            let r = rewrite(&format!("{prefix}<mod>"));
            assert_eq!(r.markers == 1, marker_counts_after(prefix), "{prefix}");
        }
    }

    #[test]
    fn escaped_quotes_do_not_end_strings() {
        let r = rewrite("let s = \"a\\\"<mod>\"; f(x <mod>)");
        assert_eq!(r.markers, 1);
    }

    #[test]
    fn columns_map_back_to_the_written_code() {
        let code = "encode(a <mod>, b <mod>) + zz";
        let r = rewrite(code);
        let col_new = r.code.find("zz").unwrap() + 1;
        let col_old = code.find("zz").unwrap() + 1;
        assert_eq!(r.original_column(1, col_new), col_old);
        // Before any marker nothing moves.
        assert_eq!(r.original_column(1, 3), 3);
        // Other lines are unaffected.
        assert_eq!(r.original_column(2, 7), 7);
    }
}
