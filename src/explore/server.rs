//! The HTTP side: `tiny_http` receives requests, a few worker threads answer them through
//! their own [`Explorer`], and a stop flag (Ctrl-C) ends the loop.

use super::api::{Explorer, Problem, MAX_BODY};
use crate::error::{Error, Result};
use crate::experiments::RunOptions;
use std::io::Read;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// Threads answering requests: dragging on the map sends one request at a time per page, and
/// a few pages (or the latency benchmark's clients) share them.
pub const WORKERS: usize = 4;

/// A server listening, not yet answering.
pub struct Server {
    http: Arc<tiny_http::Server>,
    root: std::path::PathBuf,
    opts: RunOptions,
}

impl Server {
    /// Listens on `host:port` (port 0: a free one) for the run folders under `root`.
    ///
    /// # Errors
    /// [`Error::Config`] if the address cannot be bound (in use, not this machine's) or
    /// `root` is not a folder.
    pub fn bind(host: &str, port: u16, root: &Path, opts: RunOptions) -> Result<Self> {
        if !root.is_dir() {
            return Err(Error::config(
                "runs folder",
                format!(
                    "{} is not a folder (train a run first, or give --runs)",
                    root.display()
                ),
            ));
        }
        let cannot = |e: &dyn std::fmt::Display| {
            Error::config("address", format!("cannot listen on {host}:{port}: {e}"))
        };
        let listener = listen(host, port).map_err(|e| cannot(&e))?;
        let http = tiny_http::Server::from_listener(listener, None).map_err(|e| cannot(&e))?;
        Ok(Server {
            http: Arc::new(http),
            root: root.to_path_buf(),
            opts,
        })
    }

    /// The address it listens on (with the port chosen, when 0 was asked).
    pub fn addr(&self) -> Option<SocketAddr> {
        self.http.server_addr().to_ip()
    }

    /// Answers requests until `stop` is set; returns once every worker has finished its
    /// request.
    pub fn run(self, stop: &AtomicBool) {
        std::thread::scope(|scope| {
            for _ in 0..WORKERS {
                let http = self.http.clone();
                let mut explorer = Explorer::new(&self.root, self.opts.clone());
                scope.spawn(move || {
                    while !stop.load(Ordering::SeqCst) {
                        match http.recv_timeout(Duration::from_millis(100)) {
                            Ok(Some(request)) => answer(&mut explorer, request),
                            Ok(None) => {}
                            Err(_) => break,
                        }
                    }
                });
            }
        });
    }

    /// Runs on a thread of its own until the returned flag is set (tests, benchmarks).
    pub fn spawn(self) -> (Arc<AtomicBool>, std::thread::JoinHandle<()>) {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let handle = std::thread::spawn(move || self.run(&flag));
        (stop, handle)
    }
}

/// A listening socket on `host:port` whose connections send small writes at once
/// (TCP_NODELAY, which accepted connections inherit from it). Without it, an answer's
/// headers and body leave as two writes, and the second waits for the client to acknowledge
/// the first, which a client holds back up to 40 ms hoping to send it with data of its own:
/// every decode would take 40 ms, whatever the model.
fn listen(host: &str, port: u16) -> std::io::Result<std::net::TcpListener> {
    use socket2::{Domain, Protocol, Socket, Type};
    use std::net::ToSocketAddrs;
    let addr = (host, port).to_socket_addrs()?.next().ok_or_else(|| {
        std::io::Error::new(std::io::ErrorKind::AddrNotAvailable, "no such address")
    })?;
    let socket = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))?;
    socket.set_reuse_address(true)?;
    socket.set_nodelay(true)?;
    socket.bind(&addr.into())?;
    socket.listen(128)?;
    Ok(socket.into())
}

/// Reads the body (refusing one over [`MAX_BODY`] before reading it all), answers, responds.
fn answer(explorer: &mut Explorer, mut request: tiny_http::Request) {
    let method = request.method().as_str().to_string();
    let url = request.url().to_string();
    let declared = request.body_length().unwrap_or(0);
    let reply = if declared > MAX_BODY {
        Problem {
            status: 413,
            message: format!("the body is {declared} bytes; at most {MAX_BODY} are accepted"),
        }
        .reply()
    } else {
        let mut body = Vec::new();
        let read = request
            .as_reader()
            .take(MAX_BODY as u64 + 1)
            .read_to_end(&mut body);
        match read {
            Ok(_) => explorer.handle(&method, &url, &body),
            Err(e) => Problem {
                status: 400,
                message: format!("the body could not be read: {e}"),
            }
            .reply(),
        }
    };
    let header = tiny_http::Header::from_bytes(&b"Content-Type"[..], reply.content_type.as_bytes());
    let mut response = tiny_http::Response::from_data(reply.body).with_status_code(reply.status);
    if let Ok(h) = header {
        response.add_header(h);
    }
    if let Ok(h) = tiny_http::Header::from_bytes(&b"Cache-Control"[..], &b"no-store"[..]) {
        response.add_header(h);
    }
    // A client that went away is not the server's problem.
    let _ = request.respond(response);
}
