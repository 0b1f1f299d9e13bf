//! What a task lets out of the database: its columns (`columns`, `exclude_columns`), the
//! updates it cares about (`on_change`) and the rows it wants (`filter`, a small
//! expression language).
//!
//! Pure data: parsed once when the configuration is loaded, then asked per row change
//! by the reader (whether a task gets a change) and by the encoder (which columns go
//! out). Evaluating a filter allocates nothing. It never touches the network or a file.

use std::fmt;

use crate::event::{ChangeKind, RowChange, RowImage, TableSchema, Value};

/// Which columns of a row go out; the primary key always does (`primary_id`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum Columns {
    #[default]
    All,
    Only(Vec<String>),
    Except(Vec<String>),
}

impl Columns {
    /// Whether column `i` of `table` goes out.
    #[inline]
    pub fn keeps(&self, table: &TableSchema, i: usize) -> bool {
        let named = |list: &[String]| {
            table
                .columns
                .get(i)
                .is_some_and(|name| list.iter().any(|n| n.eq_ignore_ascii_case(name)))
        };
        match self {
            Columns::All => true,
            Columns::Only(list) => named(list) || table.primary_key.contains(&i),
            Columns::Except(list) => !named(list) || table.primary_key.contains(&i),
        }
    }

    /// The names of the list that the table does not have.
    pub fn unknown<'a>(&'a self, names: &[String]) -> Vec<&'a str> {
        match self {
            Columns::All => Vec::new(),
            Columns::Only(list) | Columns::Except(list) => list
                .iter()
                .filter(|n| !names.iter().any(|c| c.eq_ignore_ascii_case(n)))
                .map(String::as_str)
                .collect(),
        }
    }
}

/// The columns whose values differ between an update's images: in the after image and
/// either absent from the before image (`binlog_row_image=MINIMAL`) or different there.
pub fn changed(change: &RowChange) -> impl Iterator<Item = usize> + '_ {
    let after = change.after.as_deref().unwrap_or_default();
    let before = change.before.as_deref().unwrap_or_default();
    after.iter().enumerate().filter_map(move |(i, a)| {
        let a = a.as_ref()?;
        match before.get(i) {
            Some(Some(b)) if b == a => None,
            _ => Some(i),
        }
    })
}

/// Whether a task with these settings gets `change`: an update only when it changed
/// one of `on_change` (when given), any change only when `filter` (when given) selects
/// it.
#[inline]
pub fn wants(on_change: &[String], filter: Option<&Filter>, change: &RowChange) -> bool {
    if change.kind == ChangeKind::Update && !on_change.is_empty() && !touches(change, on_change) {
        return false;
    }
    filter.is_none_or(|f| f.selects(change))
}

/// Whether an update changed one of `columns` (by name).
pub fn touches(change: &RowChange, columns: &[String]) -> bool {
    changed(change).any(|i| {
        change
            .table
            .columns
            .get(i)
            .is_some_and(|name| columns.iter().any(|c| c.eq_ignore_ascii_case(name)))
    })
}

/// A row filter: `status = 'paid' and total >= 100`, `country in ('DE', 'AT')`,
/// `deleted_at is null`, combined with `and`, `or`, `not` and parentheses.
#[derive(Clone, Debug, PartialEq)]
pub enum Filter {
    Compare(String, Op, Literal),
    In(String, Vec<Literal>),
    IsNull(String, bool),
    And(Box<Filter>, Box<Filter>),
    Or(Box<Filter>, Box<Filter>),
    Not(Box<Filter>),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Op {
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
}

#[derive(Clone, Debug, PartialEq)]
pub enum Literal {
    Number(f64),
    Text(String),
    Bool(bool),
}

/// Why a filter does not parse: the offending text and what was expected.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{message} at {at:?}")]
pub struct FilterError {
    pub message: String,
    /// The rest of the filter text from where it went wrong.
    pub at: String,
}

impl Filter {
    pub fn parse(text: &str) -> Result<Filter, FilterError> {
        let mut p = Parser { rest: text };
        let f = p.or()?;
        p.skip_space();
        if !p.rest.is_empty() {
            return Err(p.error("expected `and`, `or` or the end"));
        }
        Ok(f)
    }

    /// The columns it reads.
    pub fn columns(&self) -> Vec<&str> {
        let mut out = Vec::new();
        self.walk(&mut |c| out.push(c));
        out
    }

    fn walk<'a>(&'a self, f: &mut impl FnMut(&'a str)) {
        match self {
            Filter::Compare(c, ..) | Filter::In(c, _) | Filter::IsNull(c, _) => f(c),
            Filter::And(a, b) | Filter::Or(a, b) => {
                a.walk(f);
                b.walk(f);
            }
            Filter::Not(a) => a.walk(f),
        }
    }

    /// Whether a row image matches. A column the image lacks (or the table has not)
    /// matches nothing but `is null`.
    pub fn matches(&self, table: &TableSchema, row: &RowImage) -> bool {
        let value = |column: &str| -> Option<&Value> {
            let i = table
                .columns
                .iter()
                .position(|c| c.eq_ignore_ascii_case(column))?;
            row.get(i)?.as_ref()
        };
        match self {
            Filter::Compare(c, op, lit) => value(c).is_some_and(|v| compare(v, *op, lit)),
            Filter::In(c, lits) => {
                value(c).is_some_and(|v| lits.iter().any(|l| compare(v, Op::Eq, l)))
            }
            Filter::IsNull(c, want) => matches!(value(c), None | Some(Value::Null)) == *want,
            Filter::And(a, b) => a.matches(table, row) && b.matches(table, row),
            Filter::Or(a, b) => a.matches(table, row) || b.matches(table, row),
            Filter::Not(a) => !a.matches(table, row),
        }
    }

    /// Whether a task with this filter gets `change`: the row of an insert, the old row
    /// of a delete, and for an update either row, so that a row moving into the filter
    /// arrives and one moving out of it arrives too (the receiver can drop it).
    pub fn selects(&self, change: &RowChange) -> bool {
        let t = &change.table;
        let hit = |img: &Option<RowImage>| img.as_ref().is_some_and(|r| self.matches(t, r));
        match change.kind {
            ChangeKind::Insert | ChangeKind::Read => hit(&change.after),
            ChangeKind::Delete => hit(&change.before),
            ChangeKind::Update => hit(&change.after) || hit(&change.before),
        }
    }
}

/// SQL's three-valued logic made two-valued: a comparison with NULL is false (so
/// `x != 1` and `x not in (1)` do not match a NULL `x`; `x is null` does, and `not (…)`
/// negates whatever its condition gave).
fn compare(v: &Value, op: Op, lit: &Literal) -> bool {
    use std::cmp::Ordering;
    let Some(ord) = order(v, lit) else {
        return false;
    };
    match op {
        Op::Eq => ord == Ordering::Equal,
        Op::Ne => ord != Ordering::Equal,
        Op::Lt => ord == Ordering::Less,
        Op::Le => ord != Ordering::Greater,
        Op::Gt => ord == Ordering::Greater,
        Op::Ge => ord != Ordering::Less,
    }
}

/// How a value compares with a literal; `None` when they cannot be compared (NULL, or
/// a number against text that is not one).
fn order(v: &Value, lit: &Literal) -> Option<std::cmp::Ordering> {
    match (v, lit) {
        (Value::Null, _) => None,
        (Value::Int(i), Literal::Number(n)) => (*i as f64).partial_cmp(n),
        (Value::UInt(u), Literal::Number(n)) => (*u as f64).partial_cmp(n),
        (Value::Float(f), Literal::Number(n)) => f64::from(*f).partial_cmp(n),
        (Value::Double(f), Literal::Number(n)) => f.partial_cmp(n),
        // DECIMAL arrives as its digits.
        (Value::Text(s), Literal::Number(n)) => s.trim().parse::<f64>().ok()?.partial_cmp(n),
        (Value::Text(s), Literal::Text(t)) => Some(s.as_str().cmp(t.as_str())),
        (Value::Bytes(b), Literal::Text(t)) => Some(b.as_slice().cmp(t.as_bytes())),
        (Value::Int(i), Literal::Bool(b)) => Some((*i != 0).cmp(b)),
        (Value::UInt(u), Literal::Bool(b)) => Some((*u != 0).cmp(b)),
        (Value::Json(j), Literal::Text(t)) => Some(j.as_str()?.cmp(t.as_str())),
        (Value::Json(j), Literal::Number(n)) => j.as_f64()?.partial_cmp(n),
        (Value::Json(j), Literal::Bool(b)) => Some(j.as_bool()?.cmp(b)),
        _ => None,
    }
}

impl fmt::Display for Filter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Filter::Compare(c, op, lit) => write!(f, "{c} {op} {lit}"),
            Filter::In(c, lits) => {
                write!(f, "{c} in (")?;
                for (i, l) in lits.iter().enumerate() {
                    if i > 0 {
                        f.write_str(", ")?;
                    }
                    write!(f, "{l}")?;
                }
                f.write_str(")")
            }
            Filter::IsNull(c, true) => write!(f, "{c} is null"),
            Filter::IsNull(c, false) => write!(f, "{c} is not null"),
            Filter::And(a, b) => write!(f, "({a} and {b})"),
            Filter::Or(a, b) => write!(f, "({a} or {b})"),
            Filter::Not(a) => write!(f, "not {a}"),
        }
    }
}

impl fmt::Display for Literal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Literal::Number(n) => write!(f, "{n}"),
            Literal::Text(t) => write!(f, "'{}'", t.replace('\'', "''")),
            Literal::Bool(b) => write!(f, "{b}"),
        }
    }
}

impl fmt::Display for Op {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Op::Eq => "=",
            Op::Ne => "!=",
            Op::Lt => "<",
            Op::Le => "<=",
            Op::Gt => ">",
            Op::Ge => ">=",
        })
    }
}

struct Parser<'a> {
    rest: &'a str,
}

impl<'a> Parser<'a> {
    fn error(&self, message: &str) -> FilterError {
        FilterError {
            message: message.to_owned(),
            at: if self.rest.is_empty() {
                "the end".to_owned()
            } else {
                self.rest.chars().take(30).collect()
            },
        }
    }

    fn skip_space(&mut self) {
        self.rest = self.rest.trim_start();
    }

    /// A keyword (case-insensitive, not followed by a name character).
    fn keyword(&mut self, word: &str) -> bool {
        self.skip_space();
        let n = word.len();
        let matches = self.rest.len() >= n
            && self.rest[..n].eq_ignore_ascii_case(word)
            && !self.rest[n..]
                .chars()
                .next()
                .is_some_and(|c| c.is_alphanumeric() || c == '_');
        if matches {
            self.rest = &self.rest[n..];
        }
        matches
    }

    fn symbol(&mut self, s: &str) -> bool {
        self.skip_space();
        match self.rest.strip_prefix(s) {
            Some(r) => {
                self.rest = r;
                true
            }
            None => false,
        }
    }

    fn or(&mut self) -> Result<Filter, FilterError> {
        let mut left = self.and()?;
        while self.keyword("or") {
            left = Filter::Or(Box::new(left), Box::new(self.and()?));
        }
        Ok(left)
    }

    fn and(&mut self) -> Result<Filter, FilterError> {
        let mut left = self.not()?;
        while self.keyword("and") {
            left = Filter::And(Box::new(left), Box::new(self.not()?));
        }
        Ok(left)
    }

    fn not(&mut self) -> Result<Filter, FilterError> {
        if self.keyword("not") {
            return Ok(Filter::Not(Box::new(self.not()?)));
        }
        if self.symbol("(") {
            let inner = self.or()?;
            if !self.symbol(")") {
                return Err(self.error("expected `)`"));
            }
            return Ok(inner);
        }
        self.condition()
    }

    fn condition(&mut self) -> Result<Filter, FilterError> {
        let column = self.name()?;
        if self.keyword("is") {
            let negated = self.keyword("not");
            if !self.keyword("null") {
                return Err(self.error("expected `null` after `is`"));
            }
            return Ok(Filter::IsNull(column, !negated));
        }
        if self.keyword("not") {
            if !self.keyword("in") {
                return Err(self.error("expected `in` after `not`"));
            }
            // As in SQL, `x not in (…)` does not match a NULL x.
            let list = self.list()?;
            return Ok(Filter::And(
                Box::new(Filter::IsNull(column.clone(), false)),
                Box::new(Filter::Not(Box::new(Filter::In(column, list)))),
            ));
        }
        if self.keyword("in") {
            return Ok(Filter::In(column, self.list()?));
        }
        let op = [
            ("<=", Op::Le),
            (">=", Op::Ge),
            ("!=", Op::Ne),
            ("<>", Op::Ne),
            ("=", Op::Eq),
            ("<", Op::Lt),
            (">", Op::Gt),
        ]
        .into_iter()
        .find(|(s, _)| self.symbol(s))
        .map(|(_, op)| op)
        .ok_or_else(|| self.error("expected =, !=, <, <=, >, >=, in or is after a column"))?;
        Ok(Filter::Compare(column, op, self.literal()?))
    }

    fn list(&mut self) -> Result<Vec<Literal>, FilterError> {
        if !self.symbol("(") {
            return Err(self.error("expected `(` and a list of values"));
        }
        let mut items = vec![self.literal()?];
        while self.symbol(",") {
            items.push(self.literal()?);
        }
        if !self.symbol(")") {
            return Err(self.error("expected `,` or `)`"));
        }
        Ok(items)
    }

    /// A column name, bare or in backquotes.
    fn name(&mut self) -> Result<String, FilterError> {
        self.skip_space();
        if let Some(r) = self.rest.strip_prefix('`') {
            let end = r
                .find('`')
                .ok_or_else(|| self.error("unterminated `name`"))?;
            self.rest = &r[end + 1..];
            return Ok(r[..end].to_owned());
        }
        let end = self
            .rest
            .find(|c: char| !(c.is_alphanumeric() || c == '_' || c == '$'))
            .unwrap_or(self.rest.len());
        if end == 0 {
            return Err(self.error("expected a column name"));
        }
        let name = &self.rest[..end];
        self.rest = &self.rest[end..];
        Ok(name.to_owned())
    }

    fn literal(&mut self) -> Result<Literal, FilterError> {
        self.skip_space();
        if let Some(r) = self.rest.strip_prefix('\'') {
            // '' is a quote inside the string, as in SQL.
            let mut text = String::new();
            let mut chars = r.char_indices();
            loop {
                match chars.next() {
                    Some((i, '\'')) => {
                        if r[i + 1..].starts_with('\'') {
                            text.push('\'');
                            chars.next();
                        } else {
                            self.rest = &r[i + 1..];
                            return Ok(Literal::Text(text));
                        }
                    }
                    Some((_, c)) => text.push(c),
                    None => return Err(self.error("unterminated 'string'")),
                }
            }
        }
        if self.keyword("true") {
            return Ok(Literal::Bool(true));
        }
        if self.keyword("false") {
            return Ok(Literal::Bool(false));
        }
        let end = self
            .rest
            .find(|c: char| !(c.is_ascii_digit() || "+-.eE".contains(c)))
            .unwrap_or(self.rest.len());
        match self.rest[..end].parse::<f64>() {
            Ok(n) if end > 0 && n.is_finite() => {
                self.rest = &self.rest[end..];
                Ok(Literal::Number(n))
            }
            _ => Err(self.error(
                "expected a value: a number, a 'string' or true/false (null only with `is`)",
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    fn table() -> TableSchema {
        TableSchema {
            database: "shop".into(),
            table: "orders".into(),
            columns: vec![
                "id".into(),
                "status".into(),
                "total".into(),
                "country".into(),
                "deleted_at".into(),
            ],
            primary_key: vec![0],
        }
    }

    fn row(status: &str, total: &str, country: Option<&str>) -> RowImage {
        vec![
            Some(Value::Int(1)),
            Some(Value::Text(status.into())),
            Some(Value::Text(total.into())),
            Some(country.map_or(Value::Null, |c| Value::Text(c.into()))),
            Some(Value::Null),
        ]
    }

    #[test]
    fn filters_parse_and_match() {
        let t = table();
        let paid = row("paid", "120.50", Some("DE"));
        let open = row("open", "99.99", None);
        for (text, on_paid, on_open) in [
            ("status = 'paid'", true, false),
            ("status != 'paid'", false, true),
            ("total >= 100", true, false),
            ("total < 100 and status = 'open'", false, true),
            ("country in ('DE', 'AT')", true, false),
            ("country not in ('DE')", false, false),
            ("not country in ('DE')", false, true),
            ("country is null", false, true),
            ("country IS NOT NULL", true, false),
            ("not (status = 'paid' or total > 1000)", false, true),
            (
                "deleted_at is null and (status = 'paid' or status = 'open')",
                true,
                true,
            ),
            ("`status` = 'it''s'", false, false),
            ("id = 1", true, true),
            ("missing = 1", false, false),
            ("missing is null", true, true),
        ] {
            let f = Filter::parse(text).unwrap_or_else(|e| panic!("{text}: {e}"));
            assert_eq!(f.matches(&t, &paid), on_paid, "{text} on paid");
            assert_eq!(f.matches(&t, &open), on_open, "{text} on open");
        }
    }

    #[test]
    fn bad_filters_say_where() {
        for (text, expected) in [
            ("status = ", "expected a value"),
            ("status == 'x'", "expected a value"),
            ("status 'x'", "expected =, !=, <, <=, >, >=, in or is"),
            ("(status = 'x'", "expected `)`"),
            ("status = 'x' nand y = 1", "expected `and`, `or` or the end"),
            ("status is 'x'", "expected `null` after `is`"),
            ("status = 'open", "unterminated 'string'"),
            ("country in 'DE'", "expected `(`"),
            ("status = null", "expected a value"),
        ] {
            let e = Filter::parse(text).unwrap_err();
            assert!(e.message.contains(expected), "{text}: {e}");
        }
        assert_eq!(
            Filter::parse("a = 1 and b = 'x' or not c is null")
                .unwrap()
                .columns(),
            ["a", "b", "c"]
        );
    }

    fn update(before: RowImage, after: RowImage) -> RowChange {
        RowChange {
            kind: ChangeKind::Update,
            table: Arc::new(table()),
            before: Some(before),
            after: Some(after),
            id: "f:4:0".into(),
            position: crate::event::BinlogPosition::new("f", 4),
            timestamp: 0,
            gtid: None,
            go: None,
        }
    }

    #[test]
    fn updates_moving_into_or_out_of_a_filter_are_selected_and_changes_are_named() {
        let f = Filter::parse("status = 'paid'").unwrap();
        let into = update(row("open", "1", None), row("paid", "1", None));
        let out_of = update(row("paid", "1", None), row("refunded", "1", None));
        let neither = update(row("open", "1", None), row("open", "2", None));
        assert!(f.selects(&into) && f.selects(&out_of) && !f.selects(&neither));
        let named: Vec<usize> = changed(&neither).collect();
        assert_eq!(named, [2]);
        assert!(touches(&neither, &["TOTAL".into()]));
        assert!(!touches(&neither, &["status".into()]));
        // A MINIMAL before image: what the after image has and the before lacks changed.
        let mut minimal = update(
            vec![Some(Value::Int(1)), None, None, None, None],
            row("open", "1", None),
        );
        minimal.after.as_mut().unwrap()[4] = None;
        assert_eq!(changed(&minimal).collect::<Vec<_>>(), [1, 2, 3]);
    }

    #[test]
    fn column_selections_keep_the_primary_key() {
        let t = table();
        let only = Columns::Only(vec!["status".into()]);
        let except = Columns::Except(vec!["ID".into(), "total".into()]);
        let kept = |c: &Columns| (0..5).filter(|&i| c.keeps(&t, i)).collect::<Vec<_>>();
        assert_eq!(kept(&only), [0, 1]);
        assert_eq!(kept(&except), [0, 1, 3, 4]);
        assert_eq!(kept(&Columns::All), [0, 1, 2, 3, 4]);
        assert_eq!(
            Columns::Only(vec!["status".into(), "nope".into()]).unknown(&t.columns),
            ["nope"]
        );
    }
}
