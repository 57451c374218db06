//! SIGINT and SIGTERM, the signals that ask a consumer to stop.

use std::fmt;
use std::io;

/// A signal that asks the process to stop.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Signal {
    /// SIGINT (Ctrl-C).
    Interrupt,
    /// SIGTERM.
    Terminate,
}

impl fmt::Display for Signal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Signal::Interrupt => "SIGINT",
            Signal::Terminate => "SIGTERM",
        })
    }
}

/// The process's stop signals, listened to from the moment this is made:
/// one that arrives between two [`recv`](Self::recv)s is not lost (a second
/// signal can then mean "stop now").
#[derive(Debug)]
pub struct Signals {
    #[cfg(unix)]
    interrupt: tokio::signal::unix::Signal,
    #[cfg(unix)]
    terminate: tokio::signal::unix::Signal,
}

impl Signals {
    /// Starts listening for SIGINT and SIGTERM (on non-Unix systems:
    /// Ctrl-C). Fails when the signal handlers cannot be installed. Must be
    /// called inside a tokio runtime.
    pub fn new() -> io::Result<Signals> {
        #[cfg(unix)]
        {
            use tokio::signal::unix::{signal, SignalKind};
            Ok(Signals {
                interrupt: signal(SignalKind::interrupt())?,
                terminate: signal(SignalKind::terminate())?,
            })
        }
        #[cfg(not(unix))]
        {
            Ok(Signals {})
        }
    }

    /// Completes with the next stop signal.
    pub async fn recv(&mut self) -> io::Result<Signal> {
        #[cfg(unix)]
        {
            tokio::select! {
                _ = self.interrupt.recv() => Ok(Signal::Interrupt),
                _ = self.terminate.recv() => Ok(Signal::Terminate),
            }
        }
        #[cfg(not(unix))]
        {
            tokio::signal::ctrl_c().await.map(|()| Signal::Interrupt)
        }
    }
}

/// Completes when the process receives SIGINT (Ctrl-C) or SIGTERM (on
/// non-Unix systems: Ctrl-C). Use it as the shutdown trigger of a web
/// server that runs beside the consumer.
///
/// Fails when the signal handlers cannot be installed.
pub async fn shutdown_signal() -> io::Result<()> {
    Signals::new()?.recv().await.map(drop)
}
