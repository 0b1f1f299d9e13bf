//! The table schema cache: for each TABLE_MAP of a watched table, the column names,
//! types, signedness, character sets, ENUM/SET labels and primary key needed to decode
//! and name its rows.
//!
//! Everything comes from the TABLE_MAP optional metadata when the server sends it
//! (`binlog_row_metadata=FULL`); what is missing comes from `information_schema` over a
//! second connection, cached per table and dropped after DDL. A column name is never
//! guessed: when `information_schema` does not match the binlog's columns, the table's
//! rows are refused with `SchemaError::NamesUnknown`. Only for binlog files (an archive
//! read without its server) may the columns be named by position instead (`@1`, `@2`,
//! as `mysqlbinlog -v` names them), with a warning. This module never reads the
//! binlog stream itself and never sends anything.

use std::collections::HashMap;
use std::sync::Arc;

use mysql::binlog::events::{OptionalMetaExtractor, OptionalMetadataField, TableMapEvent};
use mysql::consts::ColumnType;
use mysql::prelude::Queryable;

use crate::config::DatabaseConfig;
use crate::event::TableSchema;
use crate::source::connect::Connector;
use crate::source::decode::{decode_text, Charset, ColumnDef, ColumnKind};

#[derive(Debug, Clone, thiserror::Error)]
pub enum SchemaError {
    /// Column names (or types) of this table cannot be known for this event.
    #[error(
        "column names of `{database}`.`{table}` cannot be known: {reason} (set \
         binlog_row_metadata=FULL on the server to carry names in the binlog)"
    )]
    NamesUnknown {
        database: String,
        table: String,
        reason: String,
    },
    /// The TABLE_MAP event could not be understood.
    #[error("cannot read the table map of `{database}`.`{table}`: {reason}")]
    BadTableMap {
        database: String,
        table: String,
        reason: String,
    },
}

/// What the reader needs to turn rows of one table into changes.
#[derive(Debug)]
pub struct TableEntry {
    pub schema: Arc<TableSchema>,
    pub columns: Vec<ColumnDef>,
    /// Indexes of the tasks that watch this table.
    pub tasks: Vec<usize>,
}

/// One column as `information_schema.COLUMNS` describes it.
#[derive(Debug, Clone)]
struct InfoColumn {
    name: String,
    data_type: String,
    unsigned: bool,
    charset: Option<String>,
    labels: Option<Arc<[String]>>,
    /// DATETIME_PRECISION: the binlog does not carry it for old-format temporal columns.
    precision: Option<u64>,
}

#[derive(Debug)]
struct InfoTable {
    columns: Vec<InfoColumn>,
    primary_key: Vec<String>,
}

/// Looks up tables in `information_schema` over its own connection (the binlog
/// connection is busy streaming).
pub trait SchemaLookup {
    fn columns(&mut self, database: &str, table: &str) -> Result<Option<InfoTableRows>, String>;
}

/// One `information_schema.COLUMNS` row: COLUMN_NAME, DATA_TYPE, COLUMN_TYPE,
/// CHARACTER_SET_NAME, DATETIME_PRECISION.
pub type InfoColumnRow = (String, String, String, Option<String>, Option<u64>);

/// Raw rows of the two `information_schema` queries.
pub struct InfoTableRows {
    /// The columns in ordinal order.
    pub columns: Vec<InfoColumnRow>,
    /// Primary key column names in key order.
    pub primary_key: Vec<String>,
}

/// `SchemaLookup` over a lazily opened `mysql::Conn`.
pub struct MysqlLookup {
    connector: Connector,
    conn: Option<mysql::Conn>,
}

impl MysqlLookup {
    pub fn new(db: &DatabaseConfig) -> Self {
        // Names and labels become JSON strings, so they must arrive as UTF-8 whatever
        // `database.charset` says: with `latin1` a name like `größe` comes back as
        // latin1 bytes, fails to convert, and every row of the table is refused.
        let connector = Connector::with_init(db, None, Some("utf8mb4"));
        MysqlLookup {
            connector,
            conn: None,
        }
    }

    fn query(&mut self, database: &str, table: &str) -> Result<Option<InfoTableRows>, String> {
        if self.conn.is_none() {
            self.conn = Some(self.connector.connect().map_err(|e| e.to_string())?);
        }
        let conn = match self.conn.as_mut() {
            Some(c) => c,
            None => return Ok(None),
        };
        let columns: Vec<InfoColumnRow> = conn.exec(
            "SELECT COLUMN_NAME, DATA_TYPE, COLUMN_TYPE, CHARACTER_SET_NAME, DATETIME_PRECISION \
             FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ? \
             ORDER BY ORDINAL_POSITION",
            (database, table),
        )
        .map_err(|e| e.to_string())?;
        if columns.is_empty() {
            return Ok(None);
        }
        let primary_key: Vec<String> = conn
            .exec(
                "SELECT COLUMN_NAME FROM information_schema.KEY_COLUMN_USAGE \
             WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ? AND CONSTRAINT_NAME = 'PRIMARY' \
             ORDER BY ORDINAL_POSITION",
                (database, table),
            )
            .map_err(|e| e.to_string())?;
        Ok(Some(InfoTableRows {
            columns,
            primary_key,
        }))
    }
}

impl SchemaLookup for MysqlLookup {
    fn columns(&mut self, database: &str, table: &str) -> Result<Option<InfoTableRows>, String> {
        self.query(database, table).inspect_err(|_| {
            // A broken connection is reopened on the next lookup.
            self.conn = None;
        })
    }
}

/// A watched table as one TABLE_MAP event named it.
pub struct Mapped {
    /// The TABLE_MAP body, to spot an unchanged map cheaply.
    raw: Vec<u8>,
    pub database: String,
    pub table: String,
    /// Indexes of the tasks that watch the table.
    pub tasks: Vec<usize>,
    pub entry: Result<Arc<TableEntry>, SchemaError>,
}

/// The cache, keyed by the binlog's table id (per TABLE_MAP) and, for
/// `information_schema` answers, by table name.
pub struct SchemaCache {
    /// (database, table) → tasks watching it.
    watched: HashMap<(String, String), Vec<usize>>,
    /// table id → the table map it was built from and the result.
    by_id: HashMap<u64, Mapped>,
    info: HashMap<(String, String), Arc<InfoTable>>,
    lookup: Box<dyn SchemaLookup + Send>,
    /// Columns without names may be named by position (binlog files only).
    positional_names: bool,
    /// With `positional_names`: why the server could not be asked, so that it is not
    /// asked (and waited for) again for every table map.
    lookup_failed: Option<String>,
    /// Tables already warned about positional names.
    warned_positional: std::collections::HashSet<(String, String)>,
}

impl SchemaCache {
    pub fn new(
        watched: HashMap<(String, String), Vec<usize>>,
        lookup: Box<dyn SchemaLookup + Send>,
    ) -> Self {
        SchemaCache {
            watched,
            by_id: HashMap::new(),
            info: HashMap::new(),
            lookup,
            positional_names: false,
            lookup_failed: None,
            warned_positional: Default::default(),
        }
    }

    /// Binlog files: a table whose names neither the binlog nor the server can give has
    /// its columns named `@1`, `@2`, … rather than its rows refused.
    pub fn allow_positional_names(&mut self) {
        self.positional_names = true;
    }

    /// Back to the live server: names come from it again (asked again, too).
    pub fn forbid_positional_names(&mut self) {
        self.positional_names = false;
        self.lookup_failed = None;
    }

    pub fn is_watched(&self, database: &str, table: &str) -> bool {
        self.watched
            .contains_key(&(database.to_owned(), table.to_owned()))
    }

    /// Handles a TABLE_MAP event (`raw`: its body, used to spot an unchanged map).
    /// Unwatched tables are forgotten so that their rows are skipped.
    pub fn on_table_map(&mut self, tme: &TableMapEvent<'_>, raw: &[u8]) {
        let table_id = tme.table_id();
        let key = (
            tme.database_name().into_owned(),
            tme.table_name().into_owned(),
        );
        let tasks = match self.watched.get(&key) {
            Some(t) => t.clone(),
            None => {
                self.by_id.remove(&table_id);
                return;
            }
        };
        if let Some(prev) = self.by_id.get(&table_id) {
            if prev.raw.as_slice() == raw {
                return;
            }
        }
        let entry = self.build(tme, &key.0, &key.1, tasks.clone()).map(Arc::new);
        if let Err(e) = &entry {
            log::error!("{e}");
        }
        let (database, table) = key;
        self.by_id.insert(
            table_id,
            Mapped {
                raw: raw.to_vec(),
                database,
                table,
                tasks,
                entry,
            },
        );
    }

    /// The table of a rows event's table id: `None` for tables nobody watches.
    pub fn get(&self, table_id: u64) -> Option<&Mapped> {
        self.by_id.get(&table_id)
    }

    /// A DDL statement was read: what `information_schema` said may be stale now.
    /// DDL is rare, so forgetting everything is simpler and safe.
    pub fn on_ddl(&mut self) {
        self.info.clear();
    }

    fn build(
        &mut self,
        tme: &TableMapEvent<'_>,
        database: &str,
        table: &str,
        tasks: Vec<usize>,
    ) -> Result<TableEntry, SchemaError> {
        let bad = |reason: String| SchemaError::BadTableMap {
            database: database.to_owned(),
            table: table.to_owned(),
            reason,
        };
        let n = tme.columns_count() as usize;
        let mut real_types = Vec::with_capacity(n);
        let mut columns = Vec::with_capacity(n);
        for i in 0..n {
            let raw = match tme.get_raw_column_type(i) {
                Ok(Some(t)) => t,
                Ok(None) => return Err(bad(format!("column {i} has no type"))),
                Err(e) => return Err(bad(format!("column {i}: {e}"))),
            };
            let real = tme
                .get_column_type(i)
                .map_err(|e| bad(format!("column {i}: {e}")))?;
            let meta = tme.get_column_metadata(i).unwrap_or(&[]);
            let kind = ColumnKind::from_table_map(raw as u8, meta)
                .map_err(|e| bad(format!("column {i}: {e}")))?;
            real_types.push(real.unwrap_or(raw));
            columns.push(ColumnDef {
                kind,
                unsigned: false,
                charset: Charset::Binary,
                labels: None,
            });
        }

        let meta = TableMapMeta::read(tme, &real_types).map_err(|e| bad(e.to_string()))?;
        // Old-format TIME/DATETIME/TIMESTAMP columns (MariaDB with
        // mysql56_temporal_format=OFF) carry no precision in the binlog.
        let legacy = columns.iter().any(|c| c.kind.is_legacy_temporal());
        let info = if meta.is_complete(&real_types) && !legacy {
            None
        } else {
            match self.info_table(database, table, &real_types) {
                Ok(info) => Some(info),
                Err(e) if self.positional_names => {
                    let key = (database.to_owned(), table.to_owned());
                    if self.warned_positional.insert(key) {
                        log::warn!(
                            "{e}; the columns of `{database}`.`{table}` are named by position \
                             (@1, @2, … as mysqlbinlog -v shows them)"
                        );
                    }
                    None
                }
                Err(e) => return Err(e),
            }
        };

        let mut names = Vec::with_capacity(n);
        for (i, col) in columns.iter_mut().enumerate() {
            let from_info = info.as_ref().map(|t| &t.columns[i]);
            if col.kind.is_legacy_temporal() {
                let fsp = from_info.and_then(|c| c.precision).unwrap_or(0).min(6) as u8;
                col.kind = col
                    .kind
                    .clone()
                    .with_legacy_fsp(fsp)
                    .map_err(|e| bad(format!("column {i}: {e}")))?;
            }
            col.unsigned = match (&meta.unsigned, from_info) {
                (Some(u), _) => u[i],
                (None, Some(c)) => c.unsigned,
                (None, None) => false,
            };
            col.charset = match (&meta.charsets, from_info) {
                (Some(cs), _) => cs[i]
                    .map(Charset::from_collation_id)
                    .unwrap_or(Charset::Binary),
                (None, Some(c)) => c
                    .charset
                    .as_deref()
                    .map(Charset::from_name)
                    .unwrap_or(Charset::Binary),
                (None, None) => Charset::Binary,
            };
            col.labels = match (&meta.labels, from_info) {
                (Some(l), _) => l[i].as_ref().map(|raw| {
                    raw.iter()
                        .map(|b| decode_text(b, col.charset))
                        .collect::<Vec<_>>()
                        .into()
                }),
                (None, Some(c)) => c.labels.clone(),
                (None, None) => None,
            };
            let name = match (&meta.names, from_info) {
                (Some(ns), _) => ns[i].clone(),
                (None, Some(c)) => c.name.clone(),
                (None, None) if self.positional_names => format!("@{}", i + 1),
                (None, None) => unreachable_names(database, table)?,
            };
            names.push(name);
        }
        self.mariadb_types(database, table, &real_types, info.as_ref(), &mut columns);
        let primary_key = match (&meta.primary_key, &info) {
            (Some(pk), _) => pk.clone(),
            (None, Some(t)) => t
                .primary_key
                .iter()
                .map(|k| {
                    names
                        .iter()
                        .position(|n| n == k)
                        .ok_or_else(|| SchemaError::NamesUnknown {
                            database: database.to_owned(),
                            table: table.to_owned(),
                            reason: format!("primary key column `{k}` is not among the columns"),
                        })
                })
                .collect::<Result<_, _>>()?,
            (None, None) => Vec::new(),
        };
        Ok(TableEntry {
            schema: Arc::new(TableSchema {
                database: database.to_owned(),
                table: table.to_owned(),
                columns: names,
                primary_key,
            }),
            columns,
            tasks,
        })
    }

    /// MariaDB's INET4, INET6 and UUID columns reach the binlog as BINARY(4)/BINARY(16)
    /// and only the table definition tells them apart: for a table with such columns,
    /// `information_schema` is asked once per table map (the answer is cached per table
    /// until DDL). When it cannot answer, the binlog alone is still enough to deliver the
    /// rows, so the columns keep their bytes (base64) and a warning says why.
    fn mariadb_types(
        &mut self,
        database: &str,
        table: &str,
        real_types: &[ColumnType],
        info: Option<&Arc<InfoTable>>,
        columns: &mut [ColumnDef],
    ) {
        let candidate =
            |c: &ColumnDef| c.kind.may_be_mariadb_binary_type() && c.charset == Charset::Binary;
        if !columns.iter().any(candidate) {
            return;
        }
        let info = match info {
            Some(t) => t.clone(),
            None => match self.info_table(database, table, real_types) {
                Ok(t) => t,
                Err(e) => {
                    log::warn!(
                        "BINARY(4)/BINARY(16) columns of `{database}`.`{table}` are sent as \
                         bytes: whether they are INET4/INET6/UUID is unknown ({e})"
                    );
                    return;
                }
            },
        };
        for (col, from_info) in columns.iter_mut().zip(&info.columns) {
            if candidate(col) {
                if let Some(kind) = col.kind.with_mariadb_type(&from_info.data_type) {
                    col.kind = kind;
                }
            }
        }
    }

    /// `information_schema`'s view of the table, checked against the binlog's types.
    fn info_table(
        &mut self,
        database: &str,
        table: &str,
        real_types: &[ColumnType],
    ) -> Result<Arc<InfoTable>, SchemaError> {
        let unknown = |reason: String| SchemaError::NamesUnknown {
            database: database.to_owned(),
            table: table.to_owned(),
            reason,
        };
        if let Some(why) = &self.lookup_failed {
            return Err(unknown(why.clone()));
        }
        let key = (database.to_owned(), table.to_owned());
        let cached = self.info.get(&key).cloned();
        let info = match cached {
            Some(t) if matches_binlog(&t, real_types).is_ok() => t,
            _ => {
                let rows = match self.lookup.columns(database, table) {
                    Ok(rows) => rows,
                    Err(e) => {
                        let why = format!("information_schema query failed: {e}");
                        if self.positional_names {
                            self.lookup_failed = Some(why.clone());
                        }
                        return Err(unknown(why));
                    }
                }
                .ok_or_else(|| unknown("the table no longer exists".to_owned()))?;
                let t = Arc::new(InfoTable::from_rows(rows));
                self.info.insert(key, t.clone());
                t
            }
        };
        matches_binlog(&info, real_types).map_err(unknown)?;
        Ok(info)
    }
}

fn unreachable_names(database: &str, table: &str) -> Result<String, SchemaError> {
    // `is_complete` is false without names, so `info` is always there; keep the error
    // path anyway rather than a panic.
    Err(SchemaError::NamesUnknown {
        database: database.to_owned(),
        table: table.to_owned(),
        reason: "no names in the binlog and no information_schema answer".to_owned(),
    })
}

impl InfoTable {
    fn from_rows(rows: InfoTableRows) -> InfoTable {
        let columns = rows
            .columns
            .into_iter()
            .map(|(name, data_type, column_type, charset, precision)| {
                let data_type = data_type.to_ascii_lowercase();
                let labels = match data_type.as_str() {
                    "enum" | "set" => Some(parse_labels(&column_type).into()),
                    _ => None,
                };
                InfoColumn {
                    name,
                    unsigned: column_type.to_ascii_lowercase().contains("unsigned"),
                    data_type,
                    charset,
                    labels,
                    precision,
                }
            })
            .collect();
        InfoTable {
            columns,
            primary_key: rows.primary_key,
        }
    }
}

/// Parses the labels out of `enum('a','b''c')` / `set('x','y')`.
fn parse_labels(column_type: &str) -> Vec<String> {
    let inner = match (column_type.find('('), column_type.rfind(')')) {
        (Some(a), Some(b)) if a < b => &column_type[a + 1..b],
        _ => return Vec::new(),
    };
    let mut labels = Vec::new();
    let mut chars = inner.chars().peekable();
    while let Some(c) = chars.next() {
        if c != '\'' {
            continue;
        }
        let mut label = String::new();
        while let Some(c) = chars.next() {
            match c {
                '\'' if chars.peek() == Some(&'\'') => {
                    chars.next();
                    label.push('\'');
                }
                '\'' => break,
                '\\' => {
                    if let Some(n) = chars.next() {
                        label.push(n);
                    }
                }
                c => label.push(c),
            }
        }
        labels.push(label);
    }
    labels
}

/// Checks that `information_schema`'s columns are the ones the binlog row carries: same
/// count and a compatible type at every position. Otherwise the table changed after
/// the event was written and names would be shifted.
fn matches_binlog(info: &InfoTable, real_types: &[ColumnType]) -> Result<(), String> {
    if info.columns.len() != real_types.len() {
        return Err(format!(
            "the binlog row has {} columns but the table has {} now (its definition changed \
             after this event was written)",
            real_types.len(),
            info.columns.len()
        ));
    }
    for (i, (c, t)) in info.columns.iter().zip(real_types).enumerate() {
        if !type_compatible(&c.data_type, *t) {
            return Err(format!(
                "column {} (`{}`) is {} now but {:?} in the binlog (its definition changed \
                 after this event was written)",
                i + 1,
                c.name,
                c.data_type,
                t
            ));
        }
    }
    Ok(())
}

fn type_compatible(data_type: &str, t: ColumnType) -> bool {
    use ColumnType::*;
    match data_type {
        "tinyint" | "bool" | "boolean" => t == MYSQL_TYPE_TINY,
        "smallint" => t == MYSQL_TYPE_SHORT,
        "mediumint" => t == MYSQL_TYPE_INT24,
        "int" | "integer" => t == MYSQL_TYPE_LONG,
        "bigint" => t == MYSQL_TYPE_LONGLONG,
        "float" => t == MYSQL_TYPE_FLOAT,
        "double" | "real" => t == MYSQL_TYPE_DOUBLE,
        "decimal" | "numeric" => matches!(t, MYSQL_TYPE_NEWDECIMAL | MYSQL_TYPE_DECIMAL),
        "year" => t == MYSQL_TYPE_YEAR,
        "date" => matches!(t, MYSQL_TYPE_DATE | MYSQL_TYPE_NEWDATE),
        "time" => matches!(t, MYSQL_TYPE_TIME | MYSQL_TYPE_TIME2),
        "datetime" => matches!(t, MYSQL_TYPE_DATETIME | MYSQL_TYPE_DATETIME2),
        "timestamp" => matches!(t, MYSQL_TYPE_TIMESTAMP | MYSQL_TYPE_TIMESTAMP2),
        "char" | "varchar" | "binary" | "varbinary" | "inet4" | "inet6" | "uuid" => {
            matches!(
                t,
                MYSQL_TYPE_STRING | MYSQL_TYPE_VARCHAR | MYSQL_TYPE_VAR_STRING
            )
        }
        "tinytext" | "text" | "mediumtext" | "longtext" | "tinyblob" | "blob" | "mediumblob"
        | "longblob" => matches!(
            t,
            MYSQL_TYPE_BLOB | MYSQL_TYPE_TINY_BLOB | MYSQL_TYPE_MEDIUM_BLOB | MYSQL_TYPE_LONG_BLOB
        ),
        // MySQL's JSON is its own type; MariaDB's is LONGTEXT.
        "json" => matches!(t, MYSQL_TYPE_JSON | MYSQL_TYPE_BLOB),
        "enum" => t == MYSQL_TYPE_ENUM,
        "set" => t == MYSQL_TYPE_SET,
        "bit" => t == MYSQL_TYPE_BIT,
        "geometry" | "point" | "linestring" | "polygon" | "multipoint" | "multilinestring"
        | "multipolygon" | "geometrycollection" | "geomcollection" => t == MYSQL_TYPE_GEOMETRY,
        "vector" => t == MYSQL_TYPE_VECTOR,
        // A type we do not know by name: the count check above still guards names.
        _ => true,
    }
}

/// What the TABLE_MAP optional metadata says, spread out per column. A field is `None`
/// when the server did not send it.
struct TableMapMeta {
    names: Option<Vec<String>>,
    unsigned: Option<Vec<bool>>,
    /// Collation id per column; `None` inside for columns without a character set.
    charsets: Option<Vec<Option<u16>>>,
    /// ENUM/SET labels as raw bytes in the column's character set.
    labels: Option<Vec<Option<Vec<Vec<u8>>>>>,
    primary_key: Option<Vec<usize>>,
}

fn is_numeric(t: ColumnType) -> bool {
    // The servers count YEAR among the numeric columns of the SIGNEDNESS field.
    t.is_numeric_type()
}

fn is_character(t: ColumnType) -> bool {
    t.is_character_type()
}

fn is_enum_or_set(t: ColumnType) -> bool {
    t.is_enum_or_set_type()
}

fn needs_charset(t: ColumnType) -> bool {
    is_character(t) || is_enum_or_set(t)
}

impl TableMapMeta {
    fn read(tme: &TableMapEvent<'_>, types: &[ColumnType]) -> std::io::Result<TableMapMeta> {
        let n = types.len();
        let ex = OptionalMetaExtractor::new(tme.iter_optional_meta())?;

        let names: Vec<String> = ex
            .iter_column_name()
            .map(|r| r.map(|c| c.name().into_owned()))
            .collect::<Result<_, _>>()?;
        let names = (names.len() == n).then_some(names);

        let signs: Vec<bool> = ex.iter_signedness().collect();
        let numeric = types.iter().filter(|t| is_numeric(**t)).count();
        let unsigned = if signs.len() >= numeric && (numeric > 0 || signs.is_empty()) {
            let mut it = signs.into_iter();
            let v: Vec<bool> = types
                .iter()
                .map(|t| {
                    if is_numeric(*t) {
                        it.next().unwrap_or(false)
                    } else {
                        false
                    }
                })
                .collect();
            // Without a SIGNEDNESS field on a table with numeric columns we know nothing.
            (numeric == 0 || has_field(tme, |f| matches!(f, OptionalMetadataField::Signedness(_))))
                .then_some(v)
        } else {
            None
        };

        let has_charset = has_field(tme, |f| {
            matches!(
                f,
                OptionalMetadataField::DefaultCharset(_) | OptionalMetadataField::ColumnCharset(_)
            )
        });
        let has_enum_charset = has_field(tme, |f| {
            matches!(
                f,
                OptionalMetadataField::EnumAndSetDefaultCharset(_)
                    | OptionalMetadataField::EnumAndSetColumnCharset(_)
            )
        });
        let any_char = types.iter().any(|t| is_character(*t));
        let any_enum = types.iter().any(|t| is_enum_or_set(*t));
        let charsets = if (!any_char || has_charset) && (!any_enum || has_enum_charset) {
            let mut chars = ex.iter_charset();
            let mut enums = ex.iter_enum_and_set_charset();
            let mut v = Vec::with_capacity(n);
            for t in types {
                v.push(if is_character(*t) {
                    chars.next().transpose()?
                } else if is_enum_or_set(*t) {
                    enums.next().transpose()?
                } else {
                    None
                });
            }
            Some(v)
        } else {
            None
        };

        let mut enum_values: Option<Vec<Vec<Vec<u8>>>> = None;
        let mut set_values: Option<Vec<Vec<Vec<u8>>>> = None;
        let mut primary_key: Option<Vec<usize>> = None;
        for field in tme.iter_optional_meta() {
            match field? {
                OptionalMetadataField::EnumStrValue(values) => {
                    let mut all = Vec::new();
                    for v in values.iter_values() {
                        let v = v?;
                        all.push(
                            v.values()
                                .iter()
                                .map(|s| s.value_raw().to_vec())
                                .collect::<Vec<_>>(),
                        );
                    }
                    enum_values = Some(all);
                }
                OptionalMetadataField::SetStrValue(values) => {
                    let mut all = Vec::new();
                    for v in values.iter_values() {
                        let v = v?;
                        all.push(
                            v.values()
                                .iter()
                                .map(|s| s.value_raw().to_vec())
                                .collect::<Vec<_>>(),
                        );
                    }
                    set_values = Some(all);
                }
                OptionalMetadataField::SimplePrimaryKey(_)
                | OptionalMetadataField::PrimaryKeyWithPrefix(_) => {
                    let pk: Vec<usize> = ex
                        .iter_primary_key()
                        .map(|r| r.map(|i| i as usize))
                        .collect::<Result<_, _>>()?;
                    primary_key = Some(pk);
                }
                _ => {}
            }
        }
        let enums_needed = types
            .iter()
            .filter(|t| **t == ColumnType::MYSQL_TYPE_ENUM)
            .count();
        let sets_needed = types
            .iter()
            .filter(|t| **t == ColumnType::MYSQL_TYPE_SET)
            .count();
        let enum_ok = enums_needed == 0 || enum_values.as_ref().map(Vec::len) == Some(enums_needed);
        let set_ok = sets_needed == 0 || set_values.as_ref().map(Vec::len) == Some(sets_needed);
        let labels = if enum_ok && set_ok {
            let mut e = enum_values.unwrap_or_default().into_iter();
            let mut s = set_values.unwrap_or_default().into_iter();
            Some(
                types
                    .iter()
                    .map(|t| match t {
                        ColumnType::MYSQL_TYPE_ENUM => e.next(),
                        ColumnType::MYSQL_TYPE_SET => s.next(),
                        _ => None,
                    })
                    .collect(),
            )
        } else {
            None
        };
        // With names present but no primary-key field, the table has no primary key
        // (FULL metadata always sends the key when there is one).
        if primary_key.is_none() && names.is_some() {
            primary_key = Some(Vec::new());
        }
        if primary_key
            .as_ref()
            .is_some_and(|pk| pk.iter().any(|&i| i >= n))
        {
            return Err(std::io::Error::other("primary key index out of range"));
        }
        Ok(TableMapMeta {
            names,
            unsigned,
            charsets,
            labels,
            primary_key,
        })
    }

    /// True when the binlog alone tells everything needed for these columns.
    fn is_complete(&self, types: &[ColumnType]) -> bool {
        let any_numeric = types.iter().any(|t| is_numeric(*t));
        let any_charset = types.iter().any(|t| needs_charset(*t));
        self.names.is_some()
            && self.primary_key.is_some()
            && (self.unsigned.is_some() || !any_numeric)
            && (self.charsets.is_some() || !any_charset)
            && self.labels.is_some()
    }
}

fn has_field(tme: &TableMapEvent<'_>, pred: impl Fn(&OptionalMetadataField<'_>) -> bool) -> bool {
    tme.iter_optional_meta()
        .any(|f| f.as_ref().map(&pred).unwrap_or(false))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_enum_and_set_labels_with_quotes_and_commas() {
        assert_eq!(
            parse_labels("enum('a','b c','it''s','x,y')"),
            ["a", "b c", "it's", "x,y"]
        );
        assert_eq!(parse_labels("set('')"), [""]);
        assert!(parse_labels("int(11)").is_empty());
    }

    use std::sync::atomic::{AtomicUsize, Ordering};

    use mysql::binlog::events::{Event, FormatDescriptionEvent};
    use mysql::binlog::BinlogVersion;

    use crate::source::decode::ColumnKind;

    /// Answers with fixed DATA_TYPEs (or fails) and counts the questions.
    struct FakeLookup {
        types: Vec<(&'static str, &'static str)>,
        fail: bool,
        calls: Arc<AtomicUsize>,
    }

    impl SchemaLookup for FakeLookup {
        fn columns(&mut self, _: &str, _: &str) -> Result<Option<InfoTableRows>, String> {
            self.calls.fetch_add(1, Ordering::SeqCst);
            if self.fail {
                return Err("connection refused".into());
            }
            Ok(Some(InfoTableRows {
                columns: self
                    .types
                    .iter()
                    .map(|(n, t)| (n.to_string(), t.to_string(), t.to_string(), None, None))
                    .collect(),
                primary_key: vec!["id".into()],
            }))
        }
    }

    /// A TABLE_MAP event of `m`.`t` (id INT, a BINARY(16), b BINARY(16), c BINARY(4)) as
    /// table `table_id`, with FULL metadata (names, signedness, charsets, key).
    fn binary_table_map(table_id: u64) -> Event {
        let mut b = table_id.to_le_bytes()[..6].to_vec();
        b.extend_from_slice(&1u16.to_le_bytes());
        for name in [&b"m"[..], b"t"] {
            b.push(name.len() as u8);
            b.extend_from_slice(name);
            b.push(0);
        }
        b.push(4);
        b.extend_from_slice(&[3, 254, 254, 254]);
        b.extend_from_slice(&[6, 0xfe, 16, 0xfe, 16, 0xfe, 4]);
        b.push(0b1110);
        let tlv = |t: u8, v: &[u8], out: &mut Vec<u8>| {
            out.push(t);
            out.push(v.len() as u8);
            out.extend_from_slice(v);
        };
        tlv(1, &[0], &mut b); // signedness: id signed
        tlv(3, &[63, 63, 63], &mut b); // column charsets: binary
        tlv(4, b"\x02id\x01a\x01b\x01c", &mut b); // names
        tlv(8, &[0], &mut b); // primary key: id
        let mut raw = 1_700_000_000u32.to_le_bytes().to_vec();
        raw.push(19);
        raw.extend_from_slice(&1u32.to_le_bytes());
        raw.extend_from_slice(&((19 + b.len()) as u32).to_le_bytes());
        raw.extend_from_slice(&0u32.to_le_bytes());
        raw.extend_from_slice(&0u16.to_le_bytes());
        raw.extend_from_slice(&b);
        let fde = FormatDescriptionEvent::new(BinlogVersion::Version4);
        Event::read(&fde, raw.as_slice()).expect("the test table map is well formed")
    }

    fn cache(lookup: FakeLookup) -> SchemaCache {
        let mut watched = HashMap::new();
        watched.insert(("m".to_owned(), "t".to_owned()), vec![0]);
        SchemaCache::new(watched, Box::new(lookup))
    }

    fn map(c: &mut SchemaCache, table_id: u64) -> Arc<TableEntry> {
        let ev = binary_table_map(table_id);
        let tme = ev
            .read_event::<TableMapEvent<'_>>()
            .expect("table map parses");
        c.on_table_map(&tme, ev.data());
        match &c.get(table_id).expect("watched").entry {
            Ok(e) => e.clone(),
            Err(e) => panic!("table refused: {e}"),
        }
    }

    #[test]
    fn mariadb_binary_types_are_looked_up_once_per_table_and_refined() {
        let calls = Arc::new(AtomicUsize::new(0));
        let mut c = cache(FakeLookup {
            types: vec![
                ("id", "int"),
                ("a", "inet6"),
                ("b", "binary"),
                ("c", "inet4"),
            ],
            fail: false,
            calls: calls.clone(),
        });
        let e = map(&mut c, 70);
        let kinds: Vec<&ColumnKind> = e.columns.iter().map(|c| &c.kind).collect();
        assert_eq!(
            kinds,
            [
                &ColumnKind::Long,
                &ColumnKind::Inet6,
                &ColumnKind::Char { max_len: 16 },
                &ColumnKind::Inet4
            ]
        );
        assert_eq!(e.schema.columns, ["id", "a", "b", "c"]);
        assert_eq!(calls.load(Ordering::SeqCst), 1);
        // The same map again, and a new table id for the same table: no new question.
        map(&mut c, 70);
        map(&mut c, 71);
        assert_eq!(calls.load(Ordering::SeqCst), 1);
        // After DDL the definition may have changed: asked again.
        c.on_ddl();
        map(&mut c, 72);
        assert_eq!(calls.load(Ordering::SeqCst), 2);
    }

    #[test]
    fn without_an_answer_mariadb_binary_types_stay_bytes_and_rows_still_flow() {
        let calls = Arc::new(AtomicUsize::new(0));
        let mut c = cache(FakeLookup {
            types: vec![],
            fail: true,
            calls: calls.clone(),
        });
        let e = map(&mut c, 70);
        assert!(e.columns[1..]
            .iter()
            .all(|c| matches!(c.kind, ColumnKind::Char { .. })));
        assert_eq!(e.schema.columns, ["id", "a", "b", "c"]);
        assert_eq!(calls.load(Ordering::SeqCst), 1);
    }

    #[test]
    fn information_schema_must_match_binlog_columns() {
        let t = InfoTable::from_rows(InfoTableRows {
            columns: vec![
                (
                    "id".into(),
                    "int".into(),
                    "int(10) unsigned".into(),
                    None,
                    None,
                ),
                (
                    "name".into(),
                    "varchar".into(),
                    "varchar(10)".into(),
                    Some("utf8mb4".into()),
                    None,
                ),
            ],
            primary_key: vec!["id".into()],
        });
        assert!(t.columns[0].unsigned);
        let ok = [ColumnType::MYSQL_TYPE_LONG, ColumnType::MYSQL_TYPE_VARCHAR];
        assert!(matches_binlog(&t, &ok).is_ok());
        let shifted = [ColumnType::MYSQL_TYPE_VARCHAR, ColumnType::MYSQL_TYPE_LONG];
        let err = matches_binlog(&t, &shifted).unwrap_err();
        assert!(err.contains("`id`"), "{err}");
        let fewer = [ColumnType::MYSQL_TYPE_LONG];
        assert!(matches_binlog(&t, &fewer)
            .unwrap_err()
            .contains("has 1 columns but the table has 2"));
    }
}
