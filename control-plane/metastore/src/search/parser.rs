//! A recursive-descent parser of search expressions (grammar in the module above). Depth, length
//! and the number of terms are bounded, so no expression can exhaust the stack or the database.

use chrono::{DateTime, NaiveDate};

use super::lexer::{Token, tokenize};
use super::{
    CompareOp, Expr, Field, FieldKind, MAX_DEPTH, MAX_EXPRESSION_CHARS, MAX_TERMS, SearchError,
    Value, words,
};

/// Parses a search expression; an input of plain words is a full-text query.
pub fn parse(input: &str) -> Result<Expr, SearchError> {
    let length = input.chars().count();
    if length > MAX_EXPRESSION_CHARS {
        return Err(SearchError {
            position: MAX_EXPRESSION_CHARS,
            message: format!("an expression may be at most {MAX_EXPRESSION_CHARS} characters"),
        });
    }
    let tokens = tokenize(input)?;
    if tokens.is_empty() {
        return Err(SearchError {
            position: 0,
            message: "the expression is empty".into(),
        });
    }
    if is_plain_words(&tokens) {
        return text(input, 0);
    }
    let mut parser = Parser {
        tokens,
        index: 0,
        end: length,
        terms: 0,
    };
    let expr = parser.or(0)?;
    if let Some((position, token)) = parser.tokens.get(parser.index) {
        return Err(SearchError {
            position: *position,
            message: format!("expected AND, OR or the end, found {}", describe(token)),
        });
    }
    Ok(expr)
}

/// Words that are not all keywords and name no field followed by an operator: `rain gauge`.
fn is_plain_words(tokens: &[(usize, Token)]) -> bool {
    tokens.iter().all(|(_, token)| match token {
        Token::Word(word) => {
            Field::parse(word).is_none()
                && !["and", "or", "not", "like", "in"]
                    .iter()
                    .any(|keyword| word.eq_ignore_ascii_case(keyword))
        }
        Token::Integer(_) => true,
        _ => false,
    })
}

fn text(query: &str, position: usize) -> Result<Expr, SearchError> {
    let words = words(query);
    if words.is_empty() {
        return Err(SearchError {
            position,
            message: "a text search needs at least one word of letters or digits".into(),
        });
    }
    if words.len() > 16 {
        return Err(SearchError {
            position,
            message: "a text search may have at most 16 words".into(),
        });
    }
    Ok(Expr::Text(words))
}

fn describe(token: &Token) -> String {
    match token {
        Token::Word(word) => format!("`{word}`"),
        Token::String(text) => format!("the string '{text}'"),
        Token::Integer(value) => format!("the number {value}"),
        Token::Op(op) => format!("`{op}`"),
        Token::LParen => "`(`".into(),
        Token::RParen => "`)`".into(),
        Token::Comma => "`,`".into(),
    }
}

struct Parser {
    tokens: Vec<(usize, Token)>,
    index: usize,
    end: usize,
    terms: usize,
}

impl Parser {
    fn peek(&self) -> Option<&Token> {
        self.tokens.get(self.index).map(|(_, token)| token)
    }

    fn position(&self) -> usize {
        self.tokens
            .get(self.index)
            .map_or(self.end, |(position, _)| *position)
    }

    fn error(&self, message: impl Into<String>) -> SearchError {
        SearchError {
            position: self.position(),
            message: message.into(),
        }
    }

    fn keyword(&mut self, keyword: &str) -> bool {
        if matches!(self.peek(), Some(Token::Word(word)) if word.eq_ignore_ascii_case(keyword)) {
            self.index += 1;
            true
        } else {
            false
        }
    }

    fn deeper(&self, depth: usize) -> Result<usize, SearchError> {
        if depth >= MAX_DEPTH {
            return Err(self.error(format!("nested more than {MAX_DEPTH} levels deep")));
        }
        Ok(depth + 1)
    }

    fn or(&mut self, depth: usize) -> Result<Expr, SearchError> {
        let depth = self.deeper(depth)?;
        let mut left = self.and(depth)?;
        while self.keyword("or") {
            let right = self.and(depth)?;
            left = Expr::Or(Box::new(left), Box::new(right));
        }
        Ok(left)
    }

    fn and(&mut self, depth: usize) -> Result<Expr, SearchError> {
        let mut left = self.not(depth)?;
        while self.keyword("and") {
            let right = self.not(depth)?;
            left = Expr::And(Box::new(left), Box::new(right));
        }
        Ok(left)
    }

    fn not(&mut self, depth: usize) -> Result<Expr, SearchError> {
        if self.keyword("not") {
            let depth = self.deeper(depth)?;
            return Ok(Expr::Not(Box::new(self.not(depth)?)));
        }
        self.primary(depth)
    }

    fn primary(&mut self, depth: usize) -> Result<Expr, SearchError> {
        self.terms += 1;
        if self.terms > MAX_TERMS {
            return Err(self.error(format!("at most {MAX_TERMS} conditions")));
        }
        let position = self.position();
        match self.peek().cloned() {
            Some(Token::LParen) => {
                self.index += 1;
                let inner = self.or(depth)?;
                if self.peek() != Some(&Token::RParen) {
                    return Err(self.error("expected `)`"));
                }
                self.index += 1;
                Ok(inner)
            }
            Some(Token::String(query)) => {
                self.index += 1;
                text(&query, position)
            }
            Some(Token::Word(word)) => {
                let Some(field) = Field::parse(&word) else {
                    return Err(self.error(format!(
                        "unknown field `{word}`; fields are {}",
                        Field::ALL.map(Field::name).join(", ")
                    )));
                };
                self.index += 1;
                self.comparison(field)
            }
            Some(other) => Err(self.error(format!(
                "expected a field, a quoted text or `(`, found {}",
                describe(&other)
            ))),
            None => Err(self.error("the expression ends where a condition was expected")),
        }
    }

    fn comparison(&mut self, field: Field) -> Result<Expr, SearchError> {
        let negated = self.keyword("not");
        if self.keyword("like") {
            let position = self.position();
            let Some(Token::String(pattern)) = self.peek().cloned() else {
                return Err(self.error("LIKE takes a quoted pattern"));
            };
            if field.kind() != FieldKind::Text {
                return Err(SearchError {
                    position,
                    message: format!("LIKE applies to text fields; `{}` is not one", field.name()),
                });
            }
            self.index += 1;
            return Ok(Expr::Like {
                field,
                pattern: pattern.to_lowercase(),
                negated,
            });
        }
        if self.keyword("in") {
            if self.peek() != Some(&Token::LParen) {
                return Err(self.error("IN takes a list in parentheses: IN ('a', 'b')"));
            }
            self.index += 1;
            let mut values = vec![self.value(field)?];
            while self.peek() == Some(&Token::Comma) {
                self.index += 1;
                values.push(self.value(field)?);
                if values.len() > MAX_TERMS {
                    return Err(
                        self.error(format!("an IN list may hold at most {MAX_TERMS} values"))
                    );
                }
            }
            if self.peek() != Some(&Token::RParen) {
                return Err(self.error("expected `,` or `)` in the IN list"));
            }
            self.index += 1;
            return Ok(Expr::In {
                field,
                values,
                negated,
            });
        }
        if negated {
            return Err(self.error("NOT after a field must be followed by LIKE or IN"));
        }
        let op = match self.peek() {
            Some(Token::Op(op)) => match *op {
                "=" => CompareOp::Eq,
                "!=" | "<>" => CompareOp::Ne,
                "<" => CompareOp::Lt,
                "<=" => CompareOp::Le,
                ">" => CompareOp::Gt,
                _ => CompareOp::Ge,
            },
            _ => {
                return Err(self.error(format!(
                    "expected an operator (= != < <= > >= LIKE IN) after `{}`",
                    field.name()
                )));
            }
        };
        if field == Field::Keywords && !matches!(op, CompareOp::Eq | CompareOp::Ne) {
            return Err(self.error("`keywords` compares with =, !=, LIKE and IN"));
        }
        self.index += 1;
        Ok(Expr::Compare(field, op, self.value(field)?))
    }

    fn value(&mut self, field: Field) -> Result<Value, SearchError> {
        let position = self.position();
        let wrong = |expected: &str| SearchError {
            position,
            message: format!("`{}` compares with {expected}", field.name()),
        };
        let value = match (field.kind(), self.peek().cloned()) {
            (FieldKind::Text, Some(Token::String(text))) => Value::Text(text.to_lowercase()),
            (FieldKind::Text, _) => return Err(wrong("quoted text")),
            (FieldKind::Integer, Some(Token::Integer(value))) => Value::Integer(value),
            (FieldKind::Integer, _) => return Err(wrong("a whole number")),
            (FieldKind::Time, Some(Token::String(text))) => {
                Value::Integer(parse_time(&text).ok_or_else(|| {
                    wrong("a quoted RFC 3339 time or date ('2026-11-30T12:00:00Z', '2026-11-30')")
                })?)
            }
            (FieldKind::Time, _) => {
                return Err(wrong("a quoted RFC 3339 time or date ('2026-11-30')"));
            }
        };
        self.index += 1;
        Ok(value)
    }
}

fn parse_time(text: &str) -> Option<i64> {
    if let Ok(time) = DateTime::parse_from_rfc3339(text) {
        return Some(time.timestamp_millis());
    }
    let date = NaiveDate::parse_from_str(text, "%Y-%m-%d").ok()?;
    Some(date.and_hms_opt(0, 0, 0)?.and_utc().timestamp_millis())
}
