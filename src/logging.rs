//! The logger: `simplelog` text lines, or one JSON object per line (`log.format: json`),
//! always on stderr so that stdout stays free for command output.
//!
//! Owns formatting only; callers decide what to log (never payloads above debug, never
//! secrets).

use std::io::Write;

use log::{LevelFilter, Log, Metadata, Record};

use crate::clock::rfc3339_utc;
use crate::config::LogFormat;

struct JsonLogger {
    level: LevelFilter,
}

impl Log for JsonLogger {
    fn enabled(&self, metadata: &Metadata<'_>) -> bool {
        // As the text logger: the libraries' info and debug lines (ureq logs every
        // request) are noise for operators and would bury pikachu's own.
        metadata.level() <= self.level
            && (metadata.level() <= log::Level::Warn || metadata.target().starts_with("pikachu"))
    }

    fn log(&self, record: &Record<'_>) {
        if !self.enabled(record.metadata()) {
            return;
        }
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default();
        let line = serde_json::json!({
            "time": rfc3339_utc(now.as_secs() as i64),
            "level": record.level().as_str().to_ascii_lowercase(),
            "target": record.target(),
            "msg": record.args().to_string(),
        });
        let mut err = std::io::stderr().lock();
        let _ = writeln!(err, "{line}");
    }

    fn flush(&self) {
        let _ = std::io::stderr().flush();
    }
}

/// Installs the global logger. Only pikachu's own messages are shown below warn level:
/// the libraries' debug output is noise for operators.
pub fn init(level: LevelFilter, format: LogFormat) {
    let result = match format {
        LogFormat::Json => {
            log::set_max_level(level);
            log::set_boxed_logger(Box::new(JsonLogger { level }))
        }
        LogFormat::Text => {
            let config = simplelog::ConfigBuilder::new()
                .set_time_format_rfc3339()
                .set_target_level(LevelFilter::Off)
                .set_thread_level(LevelFilter::Off)
                .add_filter_allow_str("pikachu")
                .build();
            simplelog::WriteLogger::init(level, config, std::io::stderr())
        }
    };
    // A second init (tests) keeps the first logger.
    let _ = result;
}
