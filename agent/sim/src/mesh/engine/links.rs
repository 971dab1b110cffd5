//! The simulator's links as the link task and the guard run them: a connection closes, the
//! other end hears of it if packets get through, a dialler dials again with the link task's
//! backoff, a dial into silence retries its SYN and gives up.

use super::*;

impl Sim {
    /// Node `n` dropped a link (silent, or talking nonsense): the connection closes; the other
    /// end hears of it if packets get through; a dialler dials again after its backoff.
    pub(super) fn disconnect(&mut self, n: usize, peer: PeerId) {
        let Some(i) = self.nodes[n].peers.iter().position(|p| p.0 == peer) else {
            return;
        };
        let (_, link, conn) = self.nodes[n].peers.swap_remove(i);
        let link = link as usize;
        self.close(link, conn, n);
        let l = &self.links[link];
        if l.a == n && !l.up && !l.dialing {
            self.redial(link);
        }
    }

    pub(super) fn close(&mut self, link: usize, conn: u32, by: usize) {
        let l = &self.links[link];
        if !l.up || l.conn != conn {
            return;
        }
        let cut = self.cut(l);
        let (other, at_b) = if l.a == by { (l.b, true) } else { (l.a, false) };
        let at = self.now + l.base_us;
        self.links[link].up = false;
        if !cut && self.nodes[other].alive {
            self.push(
                at,
                Ev::Closed {
                    link: link as u32,
                    conn,
                    at_b,
                },
            );
        }
    }

    pub(super) fn on_closed(&mut self, link: usize, conn: u32, at_b: bool) {
        let l = &self.links[link];
        let n = if at_b { l.b } else { l.a };
        if !self.nodes[n].alive {
            return;
        }
        let Some(i) = self.nodes[n]
            .peers
            .iter()
            .position(|p| p.1 as usize == link && p.2 == conn)
        else {
            return;
        };
        let (peer, _, _) = self.nodes[n].peers.swap_remove(i);
        self.input(n, Input::PeerDown { peer });
        let l = &self.links[link];
        if !at_b && !l.up && !l.dialing {
            self.redial(link);
        }
    }

    /// The link task's loop: after a connection (or a failed attempt), sleep the backoff plus
    /// up to 99 ms of jitter, then dial again; the backoff doubles up to its cap and starts
    /// over after a connection that lasted 10 s.
    pub(super) fn redial(&mut self, link: usize) {
        let jitter = self.rng.random_range(0..100_000u64);
        let now = self.now;
        let l = &mut self.links[link];
        if now.saturating_sub(l.started_us) > BACKOFF_RESET_US {
            l.backoff_us = us(BACKOFF_START);
        }
        let at = now + l.backoff_us + jitter;
        l.backoff_us = (l.backoff_us * 2).min(us(BACKOFF_CAP));
        l.attempt += 1;
        l.dialing = true;
        let attempt = l.attempt;
        self.push(
            at,
            Ev::Dial {
                link: link as u32,
                attempt,
                step: 0,
            },
        );
    }

    pub(super) fn on_dial(&mut self, link: usize, attempt: u32, step: u8) {
        let l = &self.links[link];
        if l.attempt != attempt || l.up {
            return;
        }
        if !self.nodes[l.a].alive {
            self.links[link].dialing = false;
            return;
        }
        if step == 0 {
            self.links[link].started_us = self.now;
        }
        let l = &self.links[link];
        let cut = self.cut(l);
        let reachable = !cut && self.nodes[l.b].alive;
        let refused = !cut && !self.nodes[l.b].alive && self.cfg.kill_mode == KillMode::Exit;
        let link32 = link as u32;
        if reachable {
            // SYN, SYN-ACK, ACK and the ZMTP greeting: about three one-way trips.
            let at = self.now + 3 * l.base_us;
            self.push(
                at,
                Ev::Up {
                    link: link32,
                    attempt,
                },
            );
        } else if refused || step >= 2 {
            self.redial(link);
        } else {
            let wait = if step == 0 {
                SYN_RETRY_US
            } else {
                CONNECT_TIMEOUT_US - SYN_RETRY_US
            };
            self.push(
                self.now + wait,
                Ev::Dial {
                    link: link32,
                    attempt,
                    step: step + 1,
                },
            );
        }
    }

    pub(super) fn on_up(&mut self, link: usize, attempt: u32) {
        let l = &self.links[link];
        if l.attempt != attempt || l.up || !self.nodes[l.a].alive {
            return;
        }
        let (a, b) = (l.a, l.b);
        if self.cut(l) || !self.nodes[b].alive {
            self.redial(link);
            return;
        }
        let pa = self.nodes[a].next_peer;
        let pb = self.nodes[b].next_peer;
        self.nodes[a].next_peer += 1;
        self.nodes[b].next_peer += 1;
        let now = self.now;
        let l = &mut self.links[link];
        l.up = true;
        l.dialing = false;
        l.conn += 1;
        l.peer_a = pa;
        l.peer_b = pb;
        l.fifo = [now, now];
        let conn = l.conn;
        self.nodes[b].peers.push((pb, link as u32, conn));
        self.nodes[a].peers.push((pa, link as u32, conn));
        self.input(
            b,
            Input::PeerUp {
                peer: pb,
                direction: Direction::In,
                addr: format!("host-{a:05}"),
            },
        );
        self.input(
            a,
            Input::PeerUp {
                peer: pa,
                direction: Direction::Out,
                addr: format!("host-{b:05}:6130"),
            },
        );
    }
}
