//! nginx as a reference server, configured to do what the book's servers
//! do: answer every request with `Hello world`, log nothing, listen on
//! 127.0.0.1. It runs in the foreground (`daemon off`) with its master
//! process, in a process group of its own, from a directory of its own that
//! holds its configuration, pid file and temporary files, on a port picked
//! free by binding port 0 first. Like a [`crate::Server`], it is never left
//! behind: dropping it kills its whole group.

use std::fs;
use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use crate::group::Group;
use crate::procfs;

/// How long nginx gets to answer its first request.
const STARTUP: Duration = Duration::from_secs(10);

/// An installed nginx.
#[derive(Debug, Clone)]
pub struct Installed {
    pub program: PathBuf,
    /// "nginx/1.22.1"
    pub version: String,
    /// `nginx -V`'s configure arguments, to see which modules it has.
    configure: String,
}

impl Installed {
    /// Looks for `nginx` on the PATH and where distributions put it.
    pub fn find() -> Option<Installed> {
        let path = std::env::var_os("PATH").unwrap_or_default();
        let sbin = ["/usr/sbin", "/usr/local/sbin", "/usr/local/nginx/sbin"];
        let program = std::env::split_paths(&path)
            .chain(sbin.iter().map(PathBuf::from))
            .map(|dir| dir.join("nginx"))
            .find(|p| p.is_file())?;
        // nginx prints its version and configure arguments on stderr.
        let output = Command::new(&program).arg("-V").output().ok()?;
        let text = String::from_utf8_lossy(&output.stderr).into_owned();
        let version = text
            .lines()
            .find_map(|l| l.strip_prefix("nginx version: "))?
            .trim()
            .to_string();
        Some(Installed {
            program,
            version,
            configure: text,
        })
    }

    /// Whether this nginx was built with an http module that keeps
    /// temporary files (and so wants a temp path it can create).
    fn has_module(&self, module: &str) -> bool {
        !self
            .configure
            .contains(&format!("--without-http_{module}_module"))
    }

    /// The configuration, for a server on `port` with its files in `dir`.
    pub fn config(
        &self,
        workers: Option<usize>,
        connections: usize,
        dir: &str,
        port: u16,
    ) -> String {
        let workers = workers.map_or("auto".to_string(), |n| n.to_string());
        // Every connection a worker holds counts against worker_connections
        // (listening sockets included); the default, 512, is too few for the
        // concurrency sweep.
        let per_worker = connections + 64;
        let mut temp = format!("    client_body_temp_path {dir}/client_body;\n");
        for module in ["proxy", "fastcgi", "uwsgi", "scgi"] {
            if self.has_module(module) {
                temp += &format!("    {module}_temp_path {dir}/{module};\n");
            }
        }
        format!(
            "# Written by the book's benchmark (tools/testbed/src/nginx.rs).
worker_processes {workers};
worker_rlimit_nofile {nofile};
daemon off;
master_process on;
error_log /dev/stderr;
pid {dir}/nginx.pid;

events {{
    worker_connections {per_worker};
}}

http {{
    access_log off;
{temp}
    server {{
        listen 127.0.0.1:{port};
        location / {{
            return 200 \"Hello world\";
        }}
    }}
}}
",
            nofile = 2 * per_worker,
        )
    }
}

/// A running nginx.
#[derive(Debug)]
pub struct Nginx {
    group: Group,
    dir: PathBuf,
    addr: SocketAddr,
}

/// Names each nginx's directory apart from the others of this process.
static STARTED: AtomicUsize = AtomicUsize::new(0);

impl Nginx {
    /// Starts nginx with `workers` worker processes (`None`: one per core),
    /// each able to hold `connections` clients, and waits until it answers.
    pub fn start(
        nginx: &Installed,
        workers: Option<usize>,
        connections: usize,
    ) -> io::Result<Nginx> {
        // Another process may take the port between our probe and nginx's
        // bind: try a few ports before giving up.
        let mut last = None;
        for _ in 0..3 {
            match Nginx::try_start(nginx, workers, connections) {
                Ok(n) => return Ok(n),
                Err(e) if e.to_string().contains("Address already in use") => last = Some(e),
                Err(e) => return Err(e),
            }
        }
        Err(last.unwrap_or_else(|| io::Error::other("nginx did not start")))
    }

    fn try_start(
        nginx: &Installed,
        workers: Option<usize>,
        connections: usize,
    ) -> io::Result<Nginx> {
        let n = STARTED.fetch_add(1, Ordering::Relaxed);
        let dir = std::env::temp_dir().join(format!("bench-nginx-{}-{n}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir)?;
        let port = free_port()?;
        let dir_text = dir
            .to_str()
            .ok_or_else(|| io::Error::other("temp dir is not UTF-8"))?;
        let config = dir.join("nginx.conf");
        fs::write(&config, nginx.config(workers, connections, dir_text, port))?;
        // nginx's "/dev/stderr" is whatever we give it as stderr: a file,
        // so that what it says can be shown when it matters.
        let log = fs::File::create(dir.join("stderr.log"))?;
        let spawned = Group::spawn(
            Command::new(&nginx.program)
                .arg("-p")
                .arg(&dir)
                .arg("-c")
                .arg(&config)
                .args(["-e", "/dev/stderr"])
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(log),
        );
        let group = match spawned {
            Ok(group) => group,
            Err(e) => {
                let _ = fs::remove_dir_all(&dir);
                return Err(e);
            }
        };
        let mut server = Nginx {
            group,
            dir,
            addr: SocketAddr::from(([127, 0, 0, 1], port)),
        };
        // From here on an early return drops `server`, which kills it.
        server.wait_ready()?;
        Ok(server)
    }

    /// Waits until a worker answers, then until all workers are there.
    fn wait_ready(&mut self) -> io::Result<()> {
        let deadline = Instant::now() + STARTUP;
        loop {
            if let Some(status) = self.group.try_wait()? {
                return Err(io::Error::other(format!(
                    "nginx exited ({status}): {}",
                    self.log().trim()
                )));
            }
            if answers(self.addr) {
                break;
            }
            if Instant::now() >= deadline {
                return Err(io::Error::other(format!(
                    "nginx did not answer on {} within {STARTUP:?}: {}",
                    self.addr,
                    self.log().trim()
                )));
            }
            thread::sleep(Duration::from_millis(10));
        }
        // The master forks its workers together; wait until their number
        // has held still for a moment.
        let (mut count, mut still) = (0, 0);
        while still < 5 && Instant::now() < deadline {
            let now = procfs::group_members(self.pid()).len();
            still = if now == count && now >= 2 {
                still + 1
            } else {
                0
            };
            count = now;
            thread::sleep(Duration::from_millis(10));
        }
        Ok(())
    }

    /// The master's pid, which is also its process group's id.
    pub fn pid(&self) -> u32 {
        self.group.pid()
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// What nginx wrote on its stderr so far.
    pub fn log(&self) -> String {
        fs::read_to_string(self.dir.join("stderr.log")).unwrap_or_default()
    }

    /// Asks nginx to stop (SIGTERM: the master stops its workers and
    /// exits), waits up to `grace`, then kills its group. Returns what it
    /// logged, and whether it had to be killed.
    pub fn stop(mut self, grace: Duration) -> io::Result<(String, bool)> {
        let stopped = self.group.stop(grace)?;
        Ok((self.log(), stopped.killed))
    }
}

impl Drop for Nginx {
    /// Kills what is left of the group (a worker that outlived its master),
    /// then removes the directory.
    fn drop(&mut self) {
        let _ = self.group.kill();
        let _ = fs::remove_dir_all(&self.dir);
    }
}

/// A port of 127.0.0.1 that nobody listens on: the kernel's pick for port
/// 0, released at once for nginx to take.
fn free_port() -> io::Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

/// Whether a GET at `addr` gets a 200 back.
fn answers(addr: SocketAddr) -> bool {
    let attempt = || -> io::Result<bool> {
        let mut stream = TcpStream::connect_timeout(&addr, Duration::from_millis(200))?;
        stream.set_read_timeout(Some(Duration::from_secs(1)))?;
        stream.write_all(b"GET / HTTP/1.1\r\nHost: bench\r\nConnection: close\r\n\r\n")?;
        let mut got = Vec::new();
        stream.read_to_end(&mut got)?;
        Ok(got.starts_with(b"HTTP/1.1 200"))
    };
    attempt().unwrap_or(false)
}

/// The configuration as the book shows it: placeholders for what changes
/// from run to run.
pub fn config_for_readers(nginx: &Installed, workers: Option<usize>, connections: usize) -> String {
    nginx
        .config(workers, connections, "DIR", 0)
        .replace("127.0.0.1:0;", "127.0.0.1:PORT;")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fake(configure: &str) -> Installed {
        Installed {
            program: PathBuf::from("/usr/sbin/nginx"),
            version: "nginx/1.22.1".into(),
            configure: configure.into(),
        }
    }

    #[test]
    fn the_configuration() {
        let text = fake("--with-http_ssl_module").config(Some(1), 1024, "/tmp/x", 8080);
        for line in [
            "worker_processes 1;",
            "daemon off;",
            "master_process on;",
            "error_log /dev/stderr;",
            "pid /tmp/x/nginx.pid;",
            "worker_connections 1088;",
            "access_log off;",
            "listen 127.0.0.1:8080;",
            "return 200 \"Hello world\";",
            "proxy_temp_path /tmp/x/proxy;",
        ] {
            assert!(text.contains(line), "no {line:?} in\n{text}");
        }
        let auto = fake("--without-http_proxy_module").config(None, 8, "/d", 1);
        assert!(auto.contains("worker_processes auto;"));
        assert!(!auto.contains("proxy_temp_path"));
        assert!(auto.contains("scgi_temp_path /d/scgi;"));
        let shown = config_for_readers(&fake(""), Some(1), 8);
        assert!(shown.contains("listen 127.0.0.1:PORT;"), "{shown}");
    }

    /// Runs only where nginx is installed.
    #[test]
    fn starts_answers_and_stops() {
        let Some(nginx) = Installed::find() else {
            eprintln!("nginx is not installed: skipped");
            return;
        };
        let server = Nginx::start(&nginx, Some(1), 16).unwrap();
        assert!(answers(server.addr()));
        let pid = server.pid();
        assert_eq!(
            procfs::group_members(pid).len(),
            2,
            "a master and one worker"
        );
        let (log, killed) = server.stop(Duration::from_secs(10)).unwrap();
        assert!(!killed, "{log}");
        assert!(procfs::group_members(pid).is_empty());
    }
}
