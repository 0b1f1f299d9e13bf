//! The process's exit statuses, in one place: `main` returns them, `engine` and `check`
//! say which one their outcome is. Scripts and orchestrators rely on the numbers.

/// How `pikachu` ends.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum Exit {
    Ok = 0,
    /// A failure while running (or a check that failed for another reason than the
    /// database).
    Runtime = 1,
    /// The configuration (or the command line) is not valid.
    Config = 2,
    /// The database cannot be used: connection, settings, privileges, position.
    Database = 3,
    /// A second SIGINT/SIGTERM ended the process at once (128 + SIGINT, as shells do).
    SecondSignal = 130,
}

impl Exit {
    pub fn code(self) -> u8 {
        self as u8
    }
}

impl From<Exit> for std::process::ExitCode {
    fn from(e: Exit) -> Self {
        std::process::ExitCode::from(e.code())
    }
}
