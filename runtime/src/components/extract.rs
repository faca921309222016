//! Taking part of a value, and building one from several: the `regex` and `template`
//! attributes of a set-properties `<property>` (a message key from part of the topic name, a
//! partition key from two headers). Both are checked and compiled once, when the components
//! load; applying them to each document is the set-properties step's work.

use super::process::{PropertyName, TrackedName};

/// `regex="…"`: which part of the source value a property takes. Matched on bytes, so that
/// binary keys and values that are not UTF-8 work; the syntax is the `regex` crate's (the one
/// dialect Sluice uses wherever it takes a regular expression).
#[derive(Debug, Clone)]
pub struct ValuePattern(regex::bytes::Regex);

/// Two patterns are the same when they are written the same (a changed pattern redeploys
/// its listener).
impl PartialEq for ValuePattern {
    fn eq(&self, other: &Self) -> bool {
        self.0.as_str() == other.0.as_str()
    }
}

impl Eq for ValuePattern {}

/// The most memory one compiled pattern may take: far above any sensible key pattern, low
/// enough that a pathological one is a load error instead of a host that runs out of memory.
const PATTERN_SIZE_LIMIT: usize = 1 << 20;

impl ValuePattern {
    /// Compiles `pattern`; the error says where in it the problem is.
    pub(crate) fn parse(pattern: &str) -> Result<Self, String> {
        if let Some(problem) = regex_problem(pattern, false) {
            return Err(problem);
        }
        regex::bytes::RegexBuilder::new(pattern)
            .size_limit(PATTERN_SIZE_LIMIT)
            .build()
            .map(Self)
            .map_err(|e| match e {
                regex::Error::CompiledTooBig(limit) => format!(
                    "\"{pattern}\" compiles to more than {} KiB; simplify it (bounded \
                     repetitions such as {{1,1000}} grow it quickly)",
                    limit / 1024
                ),
                other => format!("\"{pattern}\" is not a valid regular expression: {other}"),
            })
    }

    /// The pattern as written.
    pub fn as_str(&self) -> &str {
        self.0.as_str()
    }

    /// The part of `value` the pattern takes: its first capture group when it has one that
    /// took part in the match, else the whole match. `None`: it does not match. The first
    /// match counts; anchor the pattern (`^…$`) to match the whole value.
    pub fn extract<'v>(&self, value: &'v [u8]) -> Option<&'v [u8]> {
        let captures = self.0.captures(value)?;
        captures
            .get(1)
            .or_else(|| captures.get(0))
            .map(|m| m.as_bytes())
    }
}

/// What is wrong with `pattern`, if anything, and where: from regex-syntax, whose errors carry
/// the position (a compiled regex's error only draws it over several lines). `utf8`: the
/// pattern must only match UTF-8 text (a topic name), else it may match any bytes.
pub(crate) fn regex_problem(pattern: &str, utf8: bool) -> Option<String> {
    let error = regex_syntax::ParserBuilder::new()
        .utf8(utf8)
        .build()
        .parse(pattern)
        .err()?;
    let (kind, column) = match &error {
        regex_syntax::Error::Parse(e) => (e.kind().to_string(), e.span().start.column),
        regex_syntax::Error::Translate(e) => (e.kind().to_string(), e.span().start.column),
        other => (other.to_string(), 1),
    };
    Some(format!(
        "\"{pattern}\" is not a valid regular expression: {kind} (at character {column}; the \
         syntax is that of the Rust regex crate)"
    ))
}

/// `template="…"`: a value built from literal text and document values, e.g.
/// `{header:tenant}-{property:message-key}`. `{{` and `}}` are literal braces.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Template {
    text: String,
    parts: Vec<TemplatePart>,
}

/// A piece of a template.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TemplatePart {
    /// Literal text.
    Text(String),
    /// `{property:NAME}` or `{header:NAME}`: a document property.
    Property(PropertyName),
    /// `{tracked:NAME}`: a tracked property.
    Tracked(TrackedName),
}

/// What a placeholder may name, for messages.
const PLACEHOLDERS: &str = "{property:NAME}, {header:NAME} or {tracked:NAME}";

impl Template {
    /// Parses `text`; the error names the character where the problem is (counted from 1).
    pub(crate) fn parse(text: &str) -> Result<Self, String> {
        let mut parts = Vec::new();
        let mut literal = String::new();
        let mut chars = text.char_indices().peekable();
        while let Some((at, c)) = chars.next() {
            let column = text[..at].chars().count() + 1;
            match c {
                '{' if chars.peek().is_some_and(|&(_, next)| next == '{') => {
                    chars.next();
                    literal.push('{');
                }
                '}' if chars.peek().is_some_and(|&(_, next)| next == '}') => {
                    chars.next();
                    literal.push('}');
                }
                '}' => {
                    return Err(format!(
                        "\"{text}\" has a }} at character {column} that closes nothing (write }}}} \
                         for a literal one)"
                    ))
                }
                '{' => {
                    let rest = &text[at + 1..];
                    let Some(end) = rest.find('}') else {
                        return Err(format!(
                            "\"{text}\" opens a placeholder at character {column} that is never \
                             closed (write {{{{ for a literal {{)"
                        ));
                    };
                    let placeholder = &rest[..end];
                    for _ in 0..placeholder.chars().count() + 1 {
                        chars.next();
                    }
                    if !literal.is_empty() {
                        parts.push(TemplatePart::Text(std::mem::take(&mut literal)));
                    }
                    parts.push(Self::placeholder(placeholder).map_err(|why| {
                        format!("\"{text}\": {{{placeholder}}} at character {column} {why}")
                    })?);
                }
                c => literal.push(c),
            }
        }
        if !literal.is_empty() {
            parts.push(TemplatePart::Text(literal));
        }
        if !parts.iter().any(|p| !matches!(p, TemplatePart::Text(_))) {
            return Err(format!(
                "\"{text}\" has no placeholder ({PLACEHOLDERS}); for a constant use value=\"…\""
            ));
        }
        Ok(Self {
            text: text.to_string(),
            parts,
        })
    }

    fn placeholder(placeholder: &str) -> Result<TemplatePart, String> {
        let placeholder = placeholder.trim();
        if let Some(name) = placeholder.strip_prefix("property:") {
            PropertyName::parse(name.trim()).map(TemplatePart::Property)
        } else if let Some(name) = placeholder.strip_prefix("header:") {
            match name.trim() {
                "" => Err("must name a header".to_string()),
                name => Ok(TemplatePart::Property(PropertyName::Header(
                    name.to_string(),
                ))),
            }
        } else if let Some(name) = placeholder.strip_prefix("tracked:") {
            TrackedName::parse(name.trim()).map(TemplatePart::Tracked)
        } else {
            Err(format!("must be {PLACEHOLDERS}"))
        }
    }

    /// The template as written.
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// Its pieces, in order.
    pub fn parts(&self) -> &[TemplatePart] {
        &self.parts
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_pattern_takes_its_first_group_else_the_whole_match() {
        let pattern = ValuePattern::parse("^(.*)_data$").expect("valid");
        assert_eq!(pattern.extract(b"orders_data"), Some(&b"orders"[..]));
        assert_eq!(pattern.extract(b"orders"), None);
        let whole = ValuePattern::parse("[0-9]+").expect("valid");
        assert_eq!(whole.extract(b"user-123-x"), Some(&b"123"[..]));
        // Bytes that are not UTF-8 match too: binary keys work.
        let binary = ValuePattern::parse(r"(?-u)^\x00(.)").expect("valid");
        assert_eq!(binary.extract(&[0, 0xff, 7]), Some(&[0xff][..]));
        // An optional first group that did not take part: the whole match.
        let optional = ValuePattern::parse("a(b)?").expect("valid");
        assert_eq!(optional.extract(b"xa"), Some(&b"a"[..]));
    }

    #[test]
    fn a_bad_pattern_says_what_and_where() {
        assert_eq!(
            ValuePattern::parse("(orders").unwrap_err(),
            "\"(orders\" is not a valid regular expression: unclosed group (at character 1; \
             the syntax is that of the Rust regex crate)"
        );
        assert!(ValuePattern::parse("(?:a{1000}){1000}")
            .unwrap_err()
            .contains("simplify it"));
    }

    #[test]
    fn a_template_is_text_and_placeholders() {
        let template =
            Template::parse("{header:tenant}-{property:message-key}/{tracked:offset} {{x}}")
                .expect("valid");
        assert_eq!(
            template.parts(),
            [
                TemplatePart::Property(PropertyName::Header("tenant".into())),
                TemplatePart::Text("-".into()),
                TemplatePart::Property(PropertyName::MessageKey),
                TemplatePart::Text("/".into()),
                TemplatePart::Tracked(TrackedName::Offset),
                TemplatePart::Text(" {x}".into()),
            ]
        );
    }

    #[test]
    fn a_bad_template_says_what_and_where() {
        assert_eq!(
            Template::parse("{header:a}-{customer}").unwrap_err(),
            "\"{header:a}-{customer}\": {customer} at character 12 must be {property:NAME}, \
             {header:NAME} or {tracked:NAME}"
        );
        assert_eq!(
            Template::parse("é{header:a").unwrap_err(),
            "\"é{header:a\" opens a placeholder at character 2 that is never closed (write {{ \
             for a literal {)"
        );
        assert_eq!(
            Template::parse("a}").unwrap_err(),
            "\"a}\" has a } at character 2 that closes nothing (write }} for a literal one)"
        );
        assert_eq!(
            Template::parse("{property:key}").unwrap_err(),
            "\"{property:key}\": {property:key} at character 1 must be message-key, topic-name, \
             partition, timestamp or header:NAME, got \"key\""
        );
        assert!(Template::parse("plain")
            .unwrap_err()
            .contains("has no placeholder"));
    }
}
