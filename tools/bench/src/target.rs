//! A server under test, whichever kind: a listing or a Python reference
//! (started by `testbed::Server`, which waits for its `listening on` line)
//! or nginx (started by `testbed::nginx`, which waits for an answer).
//! Either runs in a process group of its own, led by the pid given here.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use testbed::Server;
use testbed::nginx::{Installed, Nginx};

use crate::servers::{Launch, Spec};

/// How long a server gets to exit after SIGTERM before it is killed.
const GRACE: Duration = Duration::from_secs(10);

pub enum Target {
    Listing(Server),
    Nginx(Nginx),
}

impl Target {
    /// Starts `spec`: a listing from the release binaries in `bin`, a
    /// Python reference server, or nginx, sized for `connections` clients
    /// at once. `args` follow the address (a listing's number of workers).
    pub fn start(
        spec: &Spec,
        bin: &Path,
        nginx: Option<&Installed>,
        connections: usize,
        args: &[String],
    ) -> Result<Target, String> {
        Target::start_env(spec, bin, nginx, connections, args, &[])
    }

    /// Like [`Target::start`], with environment variables for a listing
    /// (`LISTEN_BACKLOG`).
    pub fn start_env(
        spec: &Spec,
        bin: &Path,
        nginx: Option<&Installed>,
        connections: usize,
        args: &[String],
        env: &[(&str, &str)],
    ) -> Result<Target, String> {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let program = match spec.launch {
            Launch::Listing => bin.join(spec.name),
            // The script runs by its `#!/usr/bin/env python3` line.
            Launch::Python { script } => crate::servers::python_dir().join(script),
            Launch::Nginx { .. } => PathBuf::new(),
        };
        match spec.launch {
            Launch::Listing | Launch::Python { .. } => Server::start_env(&program, &args, env)
                .map(Target::Listing)
                .map_err(|e| format!("starting {}: {e}", spec.name)),
            Launch::Nginx { workers } => {
                let nginx = nginx.ok_or("nginx is not installed")?;
                Nginx::start(nginx, workers, connections)
                    .map(Target::Nginx)
                    .map_err(|e| format!("starting {}: {e}", spec.name))
            }
        }
    }

    /// The server's pid, which is also its process group's id.
    pub fn pid(&self) -> u32 {
        match self {
            Target::Listing(s) => s.pid(),
            Target::Nginx(n) => n.pid(),
        }
    }

    pub fn addr(&self) -> SocketAddr {
        match self {
            Target::Listing(s) => s.addr(),
            Target::Nginx(n) => n.addr(),
        }
    }

    pub fn url(&self) -> String {
        format!("http://{}/", self.addr())
    }

    /// Whether the load generator should accept any well-formed 2xx
    /// response rather than the book's bytes: nginx adds its own headers.
    pub fn any_response(&self) -> bool {
        matches!(self, Target::Nginx(_))
    }

    /// Stops the server. `Ok(Some(message))` when there is something to
    /// know: it had to be killed, or nginx logged something.
    pub fn stop(self) -> Result<Option<String>, String> {
        match self {
            Target::Listing(server) => {
                let pid = server.pid();
                let stopped = server
                    .stop(GRACE)
                    .map_err(|e| format!("stopping {pid}: {e}"))?;
                Ok(stopped
                    .killed
                    .then(|| format!("server {pid} ignored SIGTERM for {GRACE:?} and was killed")))
            }
            Target::Nginx(nginx) => {
                let (log, killed) = nginx
                    .stop(GRACE)
                    .map_err(|e| format!("stopping nginx: {e}"))?;
                let mut message = String::new();
                if killed {
                    message += "nginx ignored SIGTERM and was killed. ";
                }
                message += log.trim();
                Ok((!message.is_empty()).then_some(message))
            }
        }
    }
}
