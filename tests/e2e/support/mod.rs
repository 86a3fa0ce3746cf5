//! What the end-to-end tests share: the real `weir up` binary on free loopback ports, killed
//! when the test ends.

use std::ffi::OsStr;
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};

pub struct WeirUp {
    child: Child,
    pub url: String,
    pub admin_token: String,
}

impl Drop for WeirUp {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Starts `weir up ARGS` with HTTP and FlightSQL on free ports and waits until it has printed
/// its address and the admin token.
#[allow(dead_code)] // each test binary compiles this module; not every one starts `weir up`
pub fn start_weir_up(args: &[&OsStr]) -> WeirUp {
    start_weir("up", args)
}

/// Starts `weir COMMAND ARGS` (`up` or `emulate`), which prints the same three lines.
pub fn start_weir(command: &str, args: &[&OsStr]) -> WeirUp {
    let http_port = free_port();
    let flight_port = free_port();
    let mut child = Command::new(env!("CARGO_BIN_EXE_weir"))
        .arg(command)
        .args(args)
        .args(["--listen", &format!("127.0.0.1:{http_port}")])
        .args(["--flightsql-listen", &format!("127.0.0.1:{flight_port}")])
        .env("RUST_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let first = lines.next().expect("weir up prints a line").unwrap();
    assert!(first.starts_with("weir is up on http://"), "{first}");
    let _ = lines.next();
    let admin_token = lines.next().expect("the admin token").unwrap();
    std::thread::spawn(move || for _ in lines {});
    WeirUp {
        child,
        url: format!("http://127.0.0.1:{http_port}"),
        admin_token: admin_token.trim().to_string(),
    }
}
