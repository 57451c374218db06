//! The exit codes and the one error type every command returns.

/// Process exit codes; `--help` and docs/CLI.md list them.
pub mod exit {
    /// Success.
    pub const OK: u8 = 0;
    /// A runtime error: AWS or Redis unreachable, a call failed.
    pub const RUNTIME: u8 = 1;
    /// A usage error (clap's own code for bad flags).
    pub const USAGE: u8 = 2;
    /// The start-up verification failed.
    pub const VERIFICATION: u8 = 3;
    /// Bad settings.
    pub const SETTINGS: u8 = 4;
    /// A bulk command left part of its work undone: `publish --file` could
    /// not publish every line, `redrive` could not move every message.
    pub const INCOMPLETE: u8 = 5;
}

/// Why a command failed. `Display` is what follows `error: ` on stderr; a
/// settings error has one line per problem.
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    /// Bad or missing settings, one line per problem.
    #[error("{}", .0.join("\n"))]
    Settings(Vec<String>),
    /// Some start-up checks failed; the report was printed already.
    #[error(
        "verification failed: {failed} check(s) failed; fix what the report says \
         (in development `iniesta provision` creates the resources)"
    )]
    Verification {
        /// How many checks failed.
        failed: usize,
    },
    /// Anything that went wrong while running.
    #[error("{0}")]
    Runtime(String),
    /// A bulk command did part of its work; its summary (printed already)
    /// says what was left undone.
    #[error("{0}")]
    Incomplete(String),
}

impl CliError {
    /// The process exit code for this error.
    pub fn exit_code(&self) -> u8 {
        match self {
            CliError::Settings(_) => exit::SETTINGS,
            CliError::Verification { .. } => exit::VERIFICATION,
            CliError::Runtime(_) => exit::RUNTIME,
            CliError::Incomplete(_) => exit::INCOMPLETE,
        }
    }

    /// Prints the error to stderr, `error: ` before every line.
    pub fn print(&self) {
        let text = self.to_string();
        for line in text.lines() {
            eprintln!("error: {line}");
        }
    }
}
