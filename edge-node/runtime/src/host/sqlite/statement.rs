//! The SQL text a guest sends, cut and rewritten so that sqlx runs it the way Spin's rusqlite
//! does.
//!
//! Spin prepares the text with `sqlite3_prepare`, which compiles the *first* statement only and
//! ignores the rest; sqlx would run every statement. [`first_statement`] finds where SQLite's
//! parser stops, with the state machine of SQLite's `sqlite3_complete` (`src/complete.c`):
//! strings, quoted identifiers and comments are skipped, and the body of a `CREATE TRIGGER`
//! runs to its `END;`.
//!
//! rusqlite binds the n-th value to parameter index n, whatever the parameter's spelling
//! (`?`, `?NNN`, `:name`, `@name`, `$name`). sqlx binds `?` in order and `?NNN` by number but
//! refuses named parameters, so [`numbered_parameters`] rewrites every parameter of a statement
//! to the `?NNN` SQLite assigns it (`sqlite3ExprAssignVarNumber`): bare `?` takes the next
//! number, `?NNN` its own, a name the number it got the first time it appeared.

use std::collections::HashMap;
use std::fmt::Write as _;

/// The token classes of `sqlite3_complete`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Token {
    Semi = 0,
    Whitespace = 1,
    Other = 2,
    Explain = 3,
    Create = 4,
    Temp = 5,
    Trigger = 6,
    End = 7,
}

/// `sqlite3_complete`'s transitions, by state then token. States: 0 invalid, 1 start (a
/// statement just ended), 2 normal, 3 after EXPLAIN, 4 after CREATE, 5 in a trigger body,
/// 6 after a `;` in a trigger body, 7 after that `END`.
const TRANSITIONS: [[u8; 8]; 8] = [
    [1, 0, 2, 3, 4, 2, 2, 2],
    [1, 1, 2, 3, 4, 2, 2, 2],
    [1, 2, 2, 2, 2, 2, 2, 2],
    [1, 3, 3, 2, 4, 2, 2, 2],
    [1, 4, 2, 2, 2, 4, 5, 2],
    [6, 5, 5, 5, 5, 5, 5, 5],
    [6, 6, 5, 5, 5, 5, 5, 7],
    [1, 7, 5, 5, 5, 5, 5, 5],
];
const STATE_START: u8 = 1;

/// SQLite's `IdChar`: letters, digits, `_`, `$` and every byte of a multi-byte character.
fn is_id_char(byte: u8) -> bool {
    byte.is_ascii_alphanumeric() || byte == b'_' || byte == b'$' || byte >= 0x80
}

/// One lexical item of the text: what it is and where it ends (exclusive).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Lexeme {
    /// Whitespace or a comment.
    Blank,
    /// `;`.
    Semi,
    /// A quoted string or identifier, an operator, a number, or an unquoted word.
    Word,
    /// A parameter: `?`, `?NNN`, `:name`, `@name`, `$name` (with Tcl-style `::` and `(…)`
    /// suffixes) or `#name`.
    Parameter,
}

/// Reads the lexeme starting at `start` (which is before the end of `sql`); returns its kind
/// and end. Unterminated strings and comments run to the end of the text.
fn lex(sql: &[u8], start: usize) -> (Lexeme, usize) {
    let at = |index: usize| sql.get(index).copied();
    let find = |from: usize, needle: &[u8]| {
        sql.get(from..)
            .and_then(|rest| {
                rest.windows(needle.len())
                    .position(|window| window == needle)
            })
            .map_or(sql.len(), |offset| from + offset + needle.len())
    };
    let Some(first) = at(start) else {
        return (Lexeme::Blank, sql.len());
    };
    match first {
        b';' => (Lexeme::Semi, start + 1),
        b' ' | b'\t' | b'\n' | b'\r' | b'\x0c' => (Lexeme::Blank, start + 1),
        b'-' if at(start + 1) == Some(b'-') => (Lexeme::Blank, find(start + 2, b"\n")),
        b'/' if at(start + 1) == Some(b'*') => (Lexeme::Blank, find(start + 2, b"*/")),
        b'[' => (Lexeme::Word, find(start + 1, b"]")),
        b'\'' | b'"' | b'`' => (Lexeme::Word, find(start + 1, &[first])),
        b'?' => {
            let digits = sql[start + 1..]
                .iter()
                .take_while(|byte| byte.is_ascii_digit())
                .count();
            (Lexeme::Parameter, start + 1 + digits)
        }
        b':' | b'@' | b'$' | b'#' => {
            let end = named_parameter_end(sql, start);
            if end > start + 1 {
                (Lexeme::Parameter, end)
            } else {
                (Lexeme::Word, start + 1)
            }
        }
        byte if is_id_char(byte) => {
            let length = sql[start..]
                .iter()
                .take_while(|byte| is_id_char(**byte))
                .count();
            (Lexeme::Word, start + length)
        }
        _ => (Lexeme::Word, start + 1),
    }
}

/// The end of a named parameter starting at `start`, following SQLite's tokenizer; `start + 1`
/// when no name follows the prefix.
fn named_parameter_end(sql: &[u8], start: usize) -> usize {
    let mut index = start + 1;
    let mut name_length = 0;
    while let Some(&byte) = sql.get(index) {
        if is_id_char(byte) {
            name_length += 1;
            index += 1;
        } else if byte == b'(' && name_length > 0 {
            let close = sql[index..]
                .iter()
                .position(|byte| *byte == b')' || byte.is_ascii_whitespace());
            return match close {
                Some(offset) if sql[index + offset] == b')' => index + offset + 1,
                _ => index,
            };
        } else if byte == b':' && sql.get(index + 1) == Some(&b':') {
            index += 2;
        } else {
            break;
        }
    }
    if name_length == 0 { start + 1 } else { index }
}

/// The `sqlite3_complete` token class of a word.
fn classify(word: &[u8]) -> Token {
    const KEYWORDS: [(&[u8], Token); 6] = [
        (b"create", Token::Create),
        (b"trigger", Token::Trigger),
        (b"temp", Token::Temp),
        (b"temporary", Token::Temp),
        (b"end", Token::End),
        (b"explain", Token::Explain),
    ];
    KEYWORDS
        .iter()
        .find(|(keyword, _)| word.eq_ignore_ascii_case(keyword))
        .map_or(Token::Other, |(_, token)| *token)
}

/// The first statement of `sql`, up to and including the `;` that ends it, or all of `sql`
/// when no `;` ends it. An empty statement (`;` alone) is a statement, as it is for SQLite.
pub fn first_statement(sql: &str) -> &str {
    let bytes = sql.as_bytes();
    let mut state = 0u8;
    let mut index = 0;
    while index < bytes.len() {
        let (lexeme, end) = lex(bytes, index);
        let token = match lexeme {
            Lexeme::Blank => Token::Whitespace,
            Lexeme::Semi => Token::Semi,
            Lexeme::Parameter => Token::Other,
            Lexeme::Word => classify(&bytes[index..end]),
        };
        state = TRANSITIONS[usize::from(state)][token as usize];
        if token == Token::Semi && state == STATE_START {
            // Every lexeme ends on an ASCII byte or at the end of the text, so `end` is a
            // character boundary.
            return sql.get(..end).unwrap_or(sql);
        }
        index = end;
    }
    sql
}

/// `statement` with every parameter written as the `?NNN` SQLite numbers it with, or `None`
/// when its parameters are all bare `?` (or it has none), which sqlx already binds by
/// position.
pub fn numbered_parameters(statement: &str) -> Option<String> {
    let bytes = statement.as_bytes();
    let mut parameters = Vec::new();
    let mut index = 0;
    while index < bytes.len() {
        let (lexeme, end) = lex(bytes, index);
        if lexeme == Lexeme::Parameter {
            parameters.push(index..end);
        }
        index = end;
    }
    if parameters
        .iter()
        .all(|range| range.len() == 1 && bytes[range.start] == b'?')
    {
        return None;
    }
    let mut rewritten = String::with_capacity(statement.len() + parameters.len() * 2);
    let mut highest = 0u64;
    let mut by_name: HashMap<&str, u64> = HashMap::new();
    let mut copied_up_to = 0;
    for range in parameters {
        let text = statement.get(range.clone())?;
        let number = if text == "?" {
            highest += 1;
            highest
        } else if let Some(digits) = text.strip_prefix('?') {
            let number = digits.parse().ok()?;
            highest = highest.max(number);
            number
        } else if let Some(&number) = by_name.get(text) {
            number
        } else {
            highest += 1;
            by_name.insert(text, highest);
            highest
        };
        rewritten.push_str(statement.get(copied_up_to..range.start)?);
        let _ = write!(rewritten, "?{number}");
        copied_up_to = range.end;
    }
    rewritten.push_str(statement.get(copied_up_to..)?);
    Some(rewritten)
}

#[cfg(test)]
mod tests {
    use super::{first_statement, numbered_parameters};

    #[test]
    fn the_first_statement_ends_at_its_semicolon() {
        for (sql, first) in [
            ("SELECT 1", "SELECT 1"),
            ("SELECT 1;", "SELECT 1;"),
            ("SELECT 1; DROP TABLE t", "SELECT 1;"),
            ("  SELECT 1 ;SELECT 2;", "  SELECT 1 ;"),
            ("SELECT 'a;b'; SELECT 2", "SELECT 'a;b';"),
            ("SELECT 'it''s;'; SELECT 2", "SELECT 'it''s;';"),
            ("SELECT \"c;\" FROM t; x", "SELECT \"c;\" FROM t;"),
            ("SELECT [c;] FROM t; x", "SELECT [c;] FROM t;"),
            ("SELECT `c;` FROM t; x", "SELECT `c;` FROM t;"),
            ("SELECT 1 -- no; end\n; SELECT 2", "SELECT 1 -- no; end\n;"),
            ("SELECT /* ; */ 1; SELECT 2", "SELECT /* ; */ 1;"),
            ("; SELECT 1", ";"),
            ("", ""),
            ("-- only a comment", "-- only a comment"),
            ("SELECT 'unterminated; x", "SELECT 'unterminated; x"),
            ("SELECT 'ü;'; x", "SELECT 'ü;';"),
        ] {
            assert_eq!(first_statement(sql), first, "{sql:?}");
        }
    }

    #[test]
    fn a_trigger_body_runs_to_its_end() {
        let trigger = "CREATE TRIGGER log AFTER INSERT ON t BEGIN \
                       INSERT INTO l VALUES (1); UPDATE c SET n = n + 1; END;";
        assert_eq!(first_statement(&format!("{trigger} SELECT 2;")), trigger);
        let temporary = "create temporary trigger x after delete on t begin select 1; end;";
        assert_eq!(first_statement(&format!("{temporary}select 2")), temporary);
        let explained = "EXPLAIN CREATE TEMP TRIGGER x AFTER DELETE ON t BEGIN SELECT 1; END;";
        assert_eq!(first_statement(&format!("{explained} x")), explained);
        // `end` after a `;` that is not in a trigger is just a word.
        assert_eq!(first_statement("SELECT 1; end; x"), "SELECT 1;");
        // `trigger` as a column name does not open a trigger body.
        assert_eq!(
            first_statement("CREATE TABLE t (trigger TEXT); SELECT 1"),
            "CREATE TABLE t (trigger TEXT);"
        );
    }

    #[test]
    fn bare_question_marks_are_left_alone() {
        assert_eq!(numbered_parameters("SELECT 1"), None);
        assert_eq!(numbered_parameters("SELECT ?, ?, '?:x' -- ?5"), None);
    }

    #[test]
    fn parameters_are_numbered_as_sqlite_numbers_them() {
        for (sql, numbered) in [
            ("SELECT :a, :b, :a", "SELECT ?1, ?2, ?1"),
            ("SELECT @a, $b, :a", "SELECT ?1, ?2, ?3"),
            ("SELECT ?2, ?", "SELECT ?2, ?3"),
            ("SELECT ?, ?5, ?, :x", "SELECT ?1, ?5, ?6, ?7"),
            ("SELECT ?3, :a", "SELECT ?3, ?4"),
            ("SELECT $a::b(c), :d, $a::b(c)", "SELECT ?1, ?2, ?1"),
            ("SELECT $x(1), :y", "SELECT ?1, ?2"),
            ("SELECT a$b, :c", "SELECT a$b, ?1"),
            (
                "SELECT ':a', \":a\", [:a], `:a`, :a /* :b */ -- :c",
                "SELECT ':a', \":a\", [:a], `:a`, ?1 /* :b */ -- :c",
            ),
            ("SELECT x'3a61', #n, :ä", "SELECT x'3a61', ?1, ?2"),
        ] {
            assert_eq!(
                numbered_parameters(sql).as_deref(),
                Some(numbered),
                "{sql:?}"
            );
        }
    }
}
