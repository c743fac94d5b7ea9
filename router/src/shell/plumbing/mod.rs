//! The router owns its plumbing: the policy rules, routes and TUN sysctls
//! that make the node's kernel route traffic into it ([`plan`]), installed
//! when it starts, and restored whenever the kernel reports that a route,
//! rule or link went away ([`netlink::Watch`]) and at a slow period besides.
//!
//! So a restarted router serves again with no help from the scripts (the
//! table-100 route to the TUN device vanishes with the old process's
//! device), and `ip route flush table 100` heals itself. The fail-closed
//! `unreachable` route stays behind the TUN route: when the router is gone,
//! pod traffic is unreachable, never routed around it.

pub mod netlink;
pub mod plan;

use std::time::{Duration, Instant};

use log::{info, warn};

use netlink::{Outcome, Rtnl, Watch};
use plan::{NodeNetwork, Plan};

/// How often the plumbing is checked without a notification (lost
/// notifications, sysctls nobody announces).
pub const CHECK_EVERY: Duration = Duration::from_secs(2);

/// The router's rules and routes, and the sockets that keep them.
pub struct Plumbing {
    net: NodeNetwork,
    rtnl: Rtnl,
    watch: Watch,
    next_check: Instant,
    installed: bool,
    restored: u64,
    last_error: Option<String>,
}

impl Plumbing {
    /// Opens the netlink sockets for `net`; nothing is installed yet (see
    /// [`Plumbing::ensure`]).
    pub fn open(net: NodeNetwork, now: Instant) -> std::io::Result<Self> {
        Ok(Plumbing {
            net,
            rtnl: Rtnl::open()?,
            watch: Watch::open()?,
            next_check: now,
            installed: false,
            restored: 0,
            last_error: None,
        })
    }

    /// The notification socket, to register with the event loop.
    pub fn watch(&self) -> &Watch {
        &self.watch
    }

    /// How many rules, routes and sysctls the router had to put back after
    /// its first installation.
    pub fn restored(&self) -> u64 {
        self.restored
    }

    /// When [`Plumbing::poll`] should run next without a notification.
    pub fn poll_timeout(&self) -> Instant {
        self.next_check
    }

    /// Reads pending notifications (the watch socket was readable) and
    /// checks the plumbing at once if something was removed.
    pub fn handle_notifications(&mut self, now: Instant) {
        if self.watch.drain() {
            self.next_check = now;
        }
        self.poll(now);
    }

    /// Checks the plumbing if due, restoring what is missing.
    pub fn poll(&mut self, now: Instant) {
        if now < self.next_check {
            return;
        }
        self.next_check = now + CHECK_EVERY;
        let first = !self.installed;
        match self.ensure() {
            Ok(n) if first => {
                self.installed = true;
                info!("routing plumbing in place ({n} rules, routes or sysctls added)");
            }
            Ok(0) => {}
            Ok(n) => {
                self.restored += n as u64;
                warn!("restored {n} routing rules, routes or sysctls that had been removed");
            }
            Err(e) => {
                // Logged once per distinct error: a namespace without the
                // rights to change routing would otherwise log every 2 s.
                if self.last_error.as_deref() != Some(e.as_str()) {
                    warn!("routing plumbing: {e}");
                    self.last_error = Some(e);
                }
            }
        }
    }

    /// Installs whatever of the plan is missing; returns how many changes
    /// it made.
    pub fn ensure(&mut self) -> Result<usize, String> {
        if self.net.underlay_dev.is_none() {
            self.net.underlay_dev = self
                .rtnl
                .device_with_address(self.net.node_ip)
                .map_err(|e| format!("looking up the device of {}: {e}", self.net.node_ip))?;
        }
        let plan: Plan = plan::plan(&self.net);
        let mut changed = 0;
        let ifindex = tun_ifindex(&self.net.tun);
        for (key, value) in &plan.tun_sysctls {
            let path = format!("/proc/sys/net/ipv4/conf/{}/{key}", self.net.tun);
            let current = std::fs::read_to_string(&path).unwrap_or_default();
            if current.trim() != *value {
                std::fs::write(&path, value).map_err(|e| format!("writing {path}: {e}"))?;
                changed += 1;
            }
        }
        for route in &plan.routes {
            let outcome = self
                .rtnl
                .add_route(route, ifindex)
                .map_err(|e| format!("adding route {route:?}: {e}"))?;
            changed += usize::from(outcome == Outcome::Changed);
        }
        // Rules before removals: the local table is added at pref 10 before
        // it leaves pref 0, so local delivery never has a gap.
        for rule in &plan.rules {
            let outcome = self
                .rtnl
                .add_rule(rule)
                .map_err(|e| format!("adding rule {rule:?}: {e}"))?;
            changed += usize::from(outcome == Outcome::Changed);
        }
        for rule in &plan.remove_rules {
            let outcome = self
                .rtnl
                .remove_rule(rule)
                .map_err(|e| format!("removing rule {rule:?}: {e}"))?;
            changed += usize::from(outcome == Outcome::Changed);
        }
        self.last_error = None;
        Ok(changed)
    }
}

/// The TUN device's interface index, from sysfs; `None` while it does not
/// exist.
fn tun_ifindex(tun: &str) -> Option<u32> {
    std::fs::read_to_string(format!("/sys/class/net/{tun}/ifindex"))
        .ok()?
        .trim()
        .parse()
        .ok()
}
