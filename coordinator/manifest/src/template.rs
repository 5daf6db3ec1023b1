//! `{{ variable }}` templates in component variables and `allowed_outbound_hosts`.
//!
//! The grammar is Spin's (`spin-expressions`, `crates/expressions/src/template.rs`): `{{` opens
//! an expression that runs to the next `}}` and is trimmed of whitespace; everything else is
//! literal text, including a lone `}}`; an unmatched `{{` is an error. Whether an expression
//! names a defined application variable is checked by the loader, which knows the variables.

use nexus_proto::app::{Template, TemplatePart};

/// Parses `text` into literal and variable parts.
///
/// Returns the reason on failure (an unmatched `{{`).
pub(crate) fn parse_template(text: &str) -> Result<Template, String> {
    let mut parts = Vec::new();
    let mut rest = text;
    while !rest.is_empty() {
        if let Some(after_open) = rest.strip_prefix("{{") {
            let Some((expression, after_close)) = after_open.split_once("}}") else {
                return Err("unmatched `{{`".to_owned());
            };
            parts.push(TemplatePart::Variable(expression.trim().to_owned()));
            rest = after_close;
        } else {
            let literal_end = rest.find("{{").unwrap_or(rest.len());
            let (literal, after_literal) = rest.split_at(literal_end);
            parts.push(TemplatePart::Literal(literal.to_owned()));
            rest = after_literal;
        }
    }
    Ok(Template(parts))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn literal(text: &str) -> TemplatePart {
        TemplatePart::Literal(text.to_owned())
    }

    fn variable(name: &str) -> TemplatePart {
        TemplatePart::Variable(name.to_owned())
    }

    #[test]
    fn splits_literals_and_variables() {
        let cases: &[(&str, Vec<TemplatePart>)] = &[
            ("", vec![]),
            ("a", vec![literal("a")]),
            (
                "a-{{ expr }}-b",
                vec![literal("a-"), variable("expr"), literal("-b")],
            ),
            (
                "{{ expr1 }}{{ expr2 }}",
                vec![variable("expr1"), variable("expr2")],
            ),
            ("{{x}}", vec![variable("x")]),
            ("{{ \t x \n }}", vec![variable("x")]),
            ("a }} b", vec![literal("a }} b")]),
            (
                "https://{{ host }}:{{port}}/",
                vec![
                    literal("https://"),
                    variable("host"),
                    literal(":"),
                    variable("port"),
                    literal("/"),
                ],
            ),
        ];
        for (text, expected) in cases {
            assert_eq!(
                parse_template(text).unwrap(),
                Template(expected.clone()),
                "{text}"
            );
        }
    }

    #[test]
    fn rejects_unmatched_open_braces() {
        assert!(parse_template("{{ matched }} {{ unmatched").is_err());
        assert!(parse_template("{{").is_err());
    }
}
