//! What is particular to the listings beyond readiness, `uring`, `executor`
//! and `tokio-tasks`: the io_uring listing says in one line why it cannot run
//! where the kernel refuses io_uring, and all let connections go
//! (descriptors, buffers and all) when clients fall silent. How they keep
//! connections open is checked with every other keep-alive listing's, in
//! `tests/keep_alive.rs`.
//!
//! Every test of `uring` first asks `support::skipped`, which prints
//! `skipped: <reason>` and ends the test where io_uring is unavailable.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::os::unix::process::CommandExt;
use std::process::{Command, Output, Stdio};

use support::{GET_CLOSE, assert_bytes, connect, program, read_to_close, start, text, wait_until};
use support::{RESPONSE, RESPONSE_KEEP_ALIVE};

/// Reads exactly one keep-alive response.
fn read_keep_alive(stream: &mut TcpStream) {
    let mut got = vec![0; RESPONSE_KEEP_ALIVE.len()];
    stream.read_exact(&mut got).expect("read a response");
    assert_bytes(&got, RESPONSE_KEEP_ALIVE);
}

const GET_KEEP_ALIVE: &[u8] = b"GET / HTTP/1.1\r\nHost: test\r\n\r\n";

/// Silent clients, and one that went quiet after a response, are closed
/// after `HEAD_TIMEOUT`; then the server holds no more descriptors than
/// before they came. For `uring` this means every cancelled receive
/// completed and its connection was dropped.
fn quiet_clients_are_let_go(name: &str) {
    if support::skipped(name) {
        return;
    }
    let server = start(name);
    let fds = || server.open_fds().expect("count the server's descriptors");
    // The first connection may make a runtime set up what it keeps.
    let mut warm = connect(server.addr());
    warm.write_all(GET_CLOSE).expect("write");
    assert_bytes(&read_to_close(&mut warm).expect("read"), RESPONSE);
    let baseline = fds();

    let mut idle = connect(server.addr());
    idle.write_all(GET_KEEP_ALIVE).expect("write");
    read_keep_alive(&mut idle);
    let mut silent: Vec<TcpStream> = (0..20).map(|_| connect(server.addr())).collect();
    wait_until("a descriptor per connection", || fds() >= baseline + 21);

    for stream in silent.iter_mut().chain([&mut idle]) {
        // WAIT is longer than HEAD_TIMEOUT: the end comes first.
        let got = read_to_close(stream).expect("the server closes the connection");
        assert!(got.is_empty(), "unexpected bytes: {}", text(&got));
    }
    wait_until("the descriptors to be closed", || fds() == baseline);
}

macro_rules! keep_alive_rows {
    ($($row:ident),*) => {$(
        mod $row {
            fn name() -> String {
                stringify!($row).replace('_', "-")
            }
            #[test]
            fn quiet_clients_are_let_go() {
                super::quiet_clients_are_let_go(&name())
            }
        }
    )*};
}

keep_alive_rows!(uring, executor, tokio_tasks);

/// Runs `uring` with a seccomp filter that makes `io_uring_setup` fail
/// with `errno`, as a container's filter might, and returns what it did.
/// It must not need io_uring to get that far, so this runs everywhere.
fn uring_refused_with(errno: i32) -> Output {
    use nix::libc;
    // A four-instruction classic BPF program: load the system call number,
    // and if it is io_uring_setup (425 on every architecture), fail it with
    // `errno`; allow everything else.
    const IO_URING_SETUP: u32 = 425;
    let filter = [
        bpf(libc::BPF_LD | libc::BPF_W | libc::BPF_ABS, 0, 0, 0),
        bpf(
            libc::BPF_JMP | libc::BPF_JEQ | libc::BPF_K,
            0,
            1,
            IO_URING_SETUP,
        ),
        bpf(
            libc::BPF_RET | libc::BPF_K,
            0,
            0,
            libc::SECCOMP_RET_ERRNO | errno as u32,
        ),
        bpf(libc::BPF_RET | libc::BPF_K, 0, 0, libc::SECCOMP_RET_ALLOW),
    ];
    let mut command = Command::new(program("uring"));
    command
        .arg("127.0.0.1:0")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    // SAFETY: between fork and exec the closure makes two system calls and
    // allocates nothing.
    unsafe {
        command.pre_exec(move || {
            let program = libc::sock_fprog {
                len: filter.len() as u16,
                filter: filter.as_ptr().cast_mut(),
            };
            // Required to install a filter without privileges.
            if libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0
                || libc::prctl(
                    libc::PR_SET_SECCOMP,
                    libc::SECCOMP_MODE_FILTER,
                    &program as *const libc::sock_fprog,
                ) != 0
            {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let mut child = command.spawn().expect("run uring under seccomp");
    // It exits at once; the wait is bounded all the same.
    wait_until("uring to exit", || {
        child.try_wait().expect("try_wait").is_some()
    });
    child.wait_with_output().expect("collect its output")
}

fn bpf(code: u32, jt: u8, jf: u8, k: u32) -> nix::libc::sock_filter {
    nix::libc::sock_filter {
        code: code as u16,
        jt,
        jf,
        k,
    }
}

#[test]
fn uring_says_why_when_io_uring_is_refused() {
    for (errno, reason) in [
        (nix::libc::EPERM, "io_uring_setup was refused (EPERM)"),
        (nix::libc::ENOSYS, "this kernel has no io_uring"),
    ] {
        let output = uring_refused_with(errno);
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(!output.status.success(), "exited with {}", output.status);
        assert!(
            output.stdout.is_empty(),
            "it must not say it listens: {:?}",
            String::from_utf8_lossy(&output.stdout)
        );
        assert_eq!(stderr.lines().count(), 1, "one line: {stderr:?}");
        assert!(
            stderr.starts_with("uring: cannot use io_uring: ") && stderr.contains(reason),
            "{stderr:?}"
        );
    }
}
