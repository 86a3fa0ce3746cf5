//! Tokens of a search expression, each with the character position it starts at.

use super::SearchError;

#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Token {
    /// A field name or a keyword (`AND`, `OR`, `NOT`, `LIKE`, `IN`).
    Word(String),
    String(String),
    Integer(i64),
    Op(&'static str),
    LParen,
    RParen,
    Comma,
}

pub(super) fn tokenize(input: &str) -> Result<Vec<(usize, Token)>, SearchError> {
    let chars: Vec<char> = input.chars().collect();
    let mut tokens = Vec::new();
    let mut i = 0;
    let error = |position: usize, message: String| SearchError { position, message };
    while i < chars.len() {
        let c = chars[i];
        let start = i;
        match c {
            c if c.is_whitespace() => i += 1,
            '(' => {
                tokens.push((start, Token::LParen));
                i += 1;
            }
            ')' => {
                tokens.push((start, Token::RParen));
                i += 1;
            }
            ',' => {
                tokens.push((start, Token::Comma));
                i += 1;
            }
            '=' => {
                tokens.push((start, Token::Op("=")));
                i += 1;
            }
            '!' | '<' | '>' => {
                let next = chars.get(i + 1).copied();
                let op = match (c, next) {
                    ('!', Some('=')) => "!=",
                    ('<', Some('=')) => "<=",
                    ('<', Some('>')) => "<>",
                    ('>', Some('=')) => ">=",
                    ('<', _) => "<",
                    ('>', _) => ">",
                    _ => return Err(error(start, "`!` must be followed by `=`".into())),
                };
                i += op.len();
                tokens.push((start, Token::Op(op)));
            }
            '\'' | '"' => {
                let quote = c;
                let mut text = String::new();
                i += 1;
                loop {
                    match chars.get(i) {
                        None => {
                            return Err(error(start, "this string is never closed".into()));
                        }
                        // A doubled quote stands for one, as in SQL.
                        Some(&q) if q == quote && chars.get(i + 1) == Some(&quote) => {
                            text.push(quote);
                            i += 2;
                        }
                        Some(&q) if q == quote => {
                            i += 1;
                            break;
                        }
                        Some(&other) => {
                            text.push(other);
                            i += 1;
                        }
                    }
                }
                tokens.push((start, Token::String(text)));
            }
            c if c.is_ascii_digit()
                || (c == '-' && chars.get(i + 1).is_some_and(char::is_ascii_digit)) =>
            {
                i += 1;
                while chars.get(i).is_some_and(char::is_ascii_digit) {
                    i += 1;
                }
                // Digits running into letters are a word (`2026q3`): text in a full-text
                // query, an unknown field elsewhere.
                if c != '-' && chars.get(i).is_some_and(|c| c.is_alphabetic() || *c == '_') {
                    while chars
                        .get(i)
                        .is_some_and(|c| c.is_alphanumeric() || *c == '_' || *c == '-' || *c == '.')
                    {
                        i += 1;
                    }
                    tokens.push((start, Token::Word(chars[start..i].iter().collect())));
                    continue;
                }
                let text: String = chars[start..i].iter().collect();
                if chars
                    .get(i)
                    .is_some_and(|c| c.is_alphanumeric() || *c == '.' || *c == '_')
                {
                    return Err(error(
                        start,
                        "numbers are whole numbers; quote text and times ('2026-01-01')".into(),
                    ));
                }
                let value = text
                    .parse::<i64>()
                    .map_err(|_| error(start, format!("`{text}` is not a 64-bit integer")))?;
                tokens.push((start, Token::Integer(value)));
            }
            c if c.is_alphabetic() || c == '_' => {
                while chars
                    .get(i)
                    .is_some_and(|c| c.is_alphanumeric() || *c == '_' || *c == '-' || *c == '.')
                {
                    i += 1;
                }
                tokens.push((start, Token::Word(chars[start..i].iter().collect())));
            }
            other => {
                return Err(error(start, format!("unexpected character {other:?}")));
            }
        }
    }
    Ok(tokens)
}
