//! Listeners inside another network namespace (`--listen-in-netns
//! /run/netns/ksr-mac-master=192.168.191.144:6443`).
//!
//! The lab's API server runs in the host's namespace (where `kubectl`
//! reaches it on 127.0.0.1) and also serves mac-master's address, which
//! exists only inside netns `ksr-mac-master`. A socket belongs to the
//! namespace it was created in, whatever thread later uses it, so a
//! short-lived thread enters the namespace (`setns`, which changes only
//! that thread), binds, and hands the listener back: an application
//! listener, no link, route or address joins the namespaces.

use std::fs::File;
use std::net::{SocketAddr, TcpListener};
use std::path::PathBuf;
use std::str::FromStr;
use std::sync::Arc;

use nix::sched::{setns, CloneFlags};
use tokio::task::JoinHandle;

use super::{serve, Frontend};
use crate::{auth, Config, Running, StartError};

/// One listener to open inside a network namespace.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NetnsListen {
    /// The namespace file, e.g. `/run/netns/ksr-mac-master`.
    pub netns: PathBuf,
    /// The address to bind there.
    pub addr: SocketAddr,
}

impl FromStr for NetnsListen {
    type Err = String;

    /// `NETNS_PATH=ADDRESS:PORT`.
    fn from_str(s: &str) -> Result<NetnsListen, String> {
        let (netns, addr) = s.rsplit_once('=').ok_or_else(|| {
            format!("expected NETNS_PATH=ADDRESS:PORT (e.g. /run/netns/ksr-mac-master=192.168.191.144:6443), got {s:?}")
        })?;
        if netns.is_empty() {
            return Err(format!("no namespace path before '=' in {s:?}"));
        }
        let addr = addr
            .parse()
            .map_err(|e| format!("{addr:?} is not ADDRESS:PORT: {e}"))?;
        Ok(NetnsListen {
            netns: PathBuf::from(netns),
            addr,
        })
    }
}

/// Why a listener could not be opened in its namespace.
#[derive(Debug, thiserror::Error)]
pub enum NetnsError {
    /// The namespace file.
    #[error("cannot open network namespace {0}: {1} (does the namespace exist?)")]
    Open(String, std::io::Error),
    /// setns(2) refused (not root, or not a network namespace file).
    #[error("cannot enter network namespace {0}: {1} (needs CAP_SYS_ADMIN and a netns file)")]
    Enter(String, nix::Error),
    /// bind(2) inside the namespace.
    #[error("cannot listen on {1} in network namespace {0}: {2}")]
    Bind(String, SocketAddr, std::io::Error),
    /// The helper thread died.
    #[error("the thread binding in network namespace {0} panicked")]
    Thread(String),
}

/// Binds `spec.addr` inside `spec.netns` and returns the listener
/// (non-blocking, for tokio). Blocks the caller for the bind only.
pub fn bind(spec: &NetnsListen) -> Result<TcpListener, NetnsError> {
    let name = spec.netns.display().to_string();
    let (netns, addr) = (spec.netns.clone(), spec.addr);
    let thread_name = name.clone();
    let handle = std::thread::spawn(move || {
        let file = File::open(&netns).map_err(|e| NetnsError::Open(thread_name.clone(), e))?;
        setns(&file, CloneFlags::CLONE_NEWNET)
            .map_err(|e| NetnsError::Enter(thread_name.clone(), e))?;
        let listener =
            TcpListener::bind(addr).map_err(|e| NetnsError::Bind(thread_name.clone(), addr, e))?;
        listener
            .set_nonblocking(true)
            .map_err(|e| NetnsError::Bind(thread_name, addr, e))?;
        Ok(listener)
    });
    handle.join().map_err(|_| NetnsError::Thread(name))?
}

/// Serves the API of `running` on listeners opened by [`bind`], with the
/// TLS, tokens and advertised address of `config` (the same as its own
/// listeners). The tasks run until the process exits.
pub fn serve_on(
    listeners: Vec<TcpListener>,
    running: &Running,
    config: &Config,
) -> Result<Vec<JoinHandle<()>>, StartError> {
    let tls = match &config.tls {
        Some((cert, key)) => Some(super::tls::acceptor(cert, key)?),
        None => None,
    };
    let tokens = match &config.tokens {
        Some(path) => Some(auth::Tokens::load(path)?),
        None => None,
    };
    let advertise = config.advertise.unwrap_or_else(|| running.address());
    let frontend = Arc::new(Frontend {
        api: running.api.clone(),
        tokens,
        advertise: advertise.to_string(),
    });
    let mut tasks = Vec::new();
    for l in listeners {
        let addr = l.local_addr().ok();
        let l = tokio::net::TcpListener::from_std(l)
            .map_err(|e| StartError::Listen(addr.unwrap_or_else(|| running.address()), e))?;
        tasks.push(tokio::spawn(serve(l, frontend.clone(), tls.clone())));
    }
    Ok(tasks)
}

#[cfg(test)]
mod tests;
