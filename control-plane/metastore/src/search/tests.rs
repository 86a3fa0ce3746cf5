//! The parser: precedence, positions of errors, bounds, and that values never reach SQL text.

use super::compile::{Bind, compile};
use super::*;

fn text(value: &str) -> Value {
    Value::Text(value.to_string())
}

#[test]
fn and_binds_tighter_than_or_and_not_tighter_than_and() {
    let expr = parse("kind = 'root' OR name = 'a' AND NOT owner = 'b'").unwrap();
    assert_eq!(
        expr,
        Expr::Or(
            Box::new(Expr::Compare(Field::Kind, CompareOp::Eq, text("root"))),
            Box::new(Expr::And(
                Box::new(Expr::Compare(Field::Name, CompareOp::Eq, text("a"))),
                Box::new(Expr::Not(Box::new(Expr::Compare(
                    Field::Owner,
                    CompareOp::Eq,
                    text("b")
                )))),
            )),
        )
    );
    let grouped = parse("(kind = 'root' OR name = 'a') AND owner = 'b'").unwrap();
    assert!(matches!(grouped, Expr::And(..)), "{grouped:?}");
}

#[test]
fn keywords_fields_and_operators_are_case_insensitive() {
    assert_eq!(
        parse("NUMRECORDS >= 10 and Kind in ('ROOT')").unwrap(),
        Expr::And(
            Box::new(Expr::Compare(
                Field::NumRecords,
                CompareOp::Ge,
                Value::Integer(10)
            )),
            Box::new(Expr::In {
                field: Field::Kind,
                values: vec![text("root")],
                negated: false
            }),
        )
    );
    assert_eq!(parse("name <> 'x'").unwrap(), parse("name != 'x'").unwrap());
}

#[test]
fn plain_words_and_quoted_text_are_full_text_queries() {
    assert_eq!(
        parse("Rain gauge").unwrap(),
        Expr::Text(vec!["rain".into(), "gauge".into()])
    );
    assert_eq!(parse("'rain-gauge'").unwrap(), parse("rain gauge").unwrap());
    assert_eq!(
        parse("2026q3 report").unwrap(),
        Expr::Text(vec!["2026q3".into(), "report".into()])
    );
    assert!(matches!(
        parse("'rain' AND license = 'MIT'").unwrap(),
        Expr::And(..)
    ));
}

#[test]
fn errors_name_their_position() {
    for (input, position, needle) in [
        ("nmae = 'x'", 0, "unknown field `nmae`"),
        ("name = ", 7, "compares with quoted text"),
        ("name = 'x' AND", 14, "ends where a condition"),
        ("name = 'x", 7, "never closed"),
        ("numRecords > 'many'", 13, "whole number"),
        ("lastUpdated > 'yesterday'", 14, "RFC 3339"),
        ("(name = 'x'", 11, "expected `)`"),
        ("name = 'x' name = 'y'", 11, "expected AND, OR"),
        ("numRecords LIKE '1%'", 16, "LIKE applies to text"),
        ("keywords > 'a'", 9, "`keywords` compares"),
        ("name = 'a' ; DROP", 11, "unexpected character"),
        ("name ! 'a'", 5, "`!` must be followed"),
        ("numRecords > 99999999999999999999", 13, "64-bit"),
        ("", 0, "empty"),
        ("name NOT = 'a'", 9, "NOT after a field"),
        ("dataSize > 10MB", 11, "whole number"),
        ("2026q3 = 'x'", 0, "unknown field `2026q3`"),
    ] {
        let error = parse(input).unwrap_err();
        assert_eq!(error.position, position, "{input}: {error}");
        assert!(error.message.contains(needle), "{input}: {error}");
    }
}

#[test]
fn expressions_are_bounded() {
    let deep = format!("{}name = 'x'{}", "(".repeat(40), ")".repeat(40));
    assert!(parse(&deep).unwrap_err().message.contains("nested"));
    let nots = format!("{}name = 'x'", "NOT ".repeat(40));
    assert!(parse(&nots).unwrap_err().message.contains("nested"));
    let wide = vec!["name = 'x'"; 70].join(" OR ");
    assert!(parse(&wide).unwrap_err().message.contains("conditions"));
    let long = format!("'{}'", "a".repeat(3000));
    assert!(parse(&long).unwrap_err().message.contains("at most"));
}

#[test]
fn values_become_binds_and_never_reach_the_sql_text() {
    let hostile = "x' OR '1'='1'; DROP TABLE datasets; --";
    let expression = format!(
        "name = '{}' OR description LIKE '%{}%'",
        hostile.replace('\'', "''"),
        hostile.replace('\'', "''")
    );
    let compiled = compile(&parse(&expression).unwrap(), 3).unwrap();
    assert!(!compiled.sql.contains("DROP"), "{}", compiled.sql);
    assert!(!compiled.sql.contains("'1'"), "{}", compiled.sql);
    assert_eq!(
        compiled.binds,
        vec![
            Bind::Text(hostile.to_lowercase()),
            Bind::Text(format!("%{}%", hostile.to_lowercase()))
        ]
    );
    assert!(compiled.sql.contains("$3") && compiled.sql.contains("$4"));
    assert!(!compiled.sql.contains("$5"));
}

#[test]
fn prefix_ranges_hold_exactly_the_words_with_the_prefix() {
    use super::compile::prefix_range;
    assert_eq!(
        prefix_range("river"),
        Some(("river".into(), Some("rives".into())))
    );
    assert_eq!(
        prefix_range("quiz"),
        Some(("quiz".into(), Some("quj".into())))
    );
    assert_eq!(prefix_range("a9"), Some(("a9".into(), Some("aa".into()))));
    assert_eq!(prefix_range("zz"), Some(("zz".into(), None)));
    assert_eq!(prefix_range("café"), None);
    let words = [
        "quiz", "quizzes", "quj", "qui", "quizz9", "r", "a9", "a9z", "aa", "a8", "zz", "zzz", "zy",
    ];
    for prefix in ["quiz", "a9", "zz", "q"] {
        let (low, high) = prefix_range(prefix).unwrap();
        for word in words {
            let inside = word >= low.as_str() && high.as_deref().is_none_or(|high| word < high);
            assert_eq!(inside, word.starts_with(prefix), "{prefix}: {word}");
        }
    }
}
