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

/// The text loggers, writing to what `out` makes: pikachu's own lines at `level`, and
/// the libraries' at warn and error only (their info and debug, e.g. ureq's line per
/// request, are noise for operators, but their warnings and errors are not), with the
/// library's name so the operator knows where a line comes from.
fn text_loggers<W: Write + Send + 'static>(
    level: LevelFilter,
    out: impl Fn() -> W,
) -> Vec<Box<dyn simplelog::SharedLogger>> {
    let own = simplelog::ConfigBuilder::new()
        .set_time_format_rfc3339()
        .set_target_level(LevelFilter::Off)
        .set_thread_level(LevelFilter::Off)
        .add_filter_allow_str("pikachu")
        .build();
    let libraries = simplelog::ConfigBuilder::new()
        .set_time_format_rfc3339()
        // simplelog shows the target for records at this level and less severe ones:
        // Error means every record.
        .set_target_level(LevelFilter::Error)
        .set_thread_level(LevelFilter::Off)
        .add_filter_ignore_str("pikachu")
        .build();
    vec![
        simplelog::WriteLogger::new(level, own, out()),
        simplelog::WriteLogger::new(level.min(LevelFilter::Warn), libraries, out()),
    ]
}

/// Installs the global logger: pikachu's messages at `level`, the libraries' warnings
/// and errors (their debug output is noise for operators).
pub fn init(level: LevelFilter, format: LogFormat) {
    let result = match format {
        LogFormat::Json => {
            log::set_max_level(level);
            log::set_boxed_logger(Box::new(JsonLogger { level }))
        }
        LogFormat::Text => simplelog::CombinedLogger::init(text_loggers(level, std::io::stderr)),
    };
    // A second init (tests) keeps the first logger.
    let _ = result;
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::{Arc, Mutex};

    #[derive(Clone, Default)]
    struct Buffer(Arc<Mutex<Vec<u8>>>);

    impl Write for Buffer {
        fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
            self.0
                .lock()
                .map_err(|_| std::io::ErrorKind::Other)?
                .extend_from_slice(b);
            Ok(b.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    fn logged(level: LevelFilter, target: &str, at: log::Level) -> String {
        let buffer = Buffer::default();
        let loggers = text_loggers(level, || buffer.clone());
        for logger in &loggers {
            logger.log(
                &Record::builder()
                    .level(at)
                    .target(target)
                    .args(format_args!("the message"))
                    .build(),
            );
        }
        let bytes = buffer.0.lock().map(|b| b.clone()).unwrap_or_default();
        String::from_utf8_lossy(&bytes).into_owned()
    }

    #[test]
    fn library_warnings_and_errors_reach_the_text_log_but_not_their_chatter() {
        let info = LevelFilter::Info;
        let warn = logged(info, "rustls::conn", log::Level::Warn);
        assert!(warn.contains("the message"), "{warn:?}");
        assert!(warn.contains("rustls"), "names the library: {warn:?}");
        assert!(logged(info, "mysql::conn", log::Level::Error).contains("the message"));
        assert_eq!(logged(info, "ureq::unversioned", log::Level::Info), "");
        assert_eq!(logged(LevelFilter::Debug, "ureq", log::Level::Debug), "");
        // pikachu's own lines, once each, at the configured level.
        let own = logged(info, "pikachu::engine", log::Level::Info);
        assert_eq!(own.matches("the message").count(), 1, "{own:?}");
        assert_eq!(logged(info, "pikachu::engine", log::Level::Debug), "");
        assert_eq!(
            logged(LevelFilter::Error, "rustls", log::Level::Warn),
            "",
            "log.level: error silences library warnings too"
        );
    }
}
