//! The figures of a finished run, computed from what the simulator recorded (the table is
//! printed by `report`).

use super::*;

impl Sim {
    pub(super) fn report(&self, wall: std::time::Duration) -> Report {
        let window_s = (self.w1 - self.w0) as f64 / 1e6;
        let mut frames: [Vec<f64>; 4] = Default::default();
        let mut bytes: [Vec<f64>; 4] = Default::default();
        let (mut live_rx, mut deliveries) = (0u64, 0u64);
        for node in &self.nodes {
            let (mut f, mut b) = (0, 0);
            for c in 0..3 {
                frames[c].push(node.rx[c].0 as f64 / window_s);
                bytes[c].push(node.rx[c].1 as f64 / window_s);
                f += node.rx[c].0;
                b += node.rx[c].1;
            }
            frames[3].push(f as f64 / window_s);
            bytes[3].push(b as f64 / window_s);
            live_rx += node.rx[LIVE].0;
            deliveries += node.deliveries;
        }
        let spread = |v: &mut [Vec<f64>; 4]| v.each_mut().map(|x| Spread::of(x));
        let steady = Figures {
            window_s,
            rx_frames: spread(&mut frames),
            rx_bytes: spread(&mut bytes),
            rmr: if deliveries == 0 {
                0.0
            } else {
                live_rx as f64 / deliveries as f64 - 1.0
            },
            latency_p50_us: self.hist.quantile(0.5),
            latency_p99_us: self.hist.quantile(0.99),
            latency_max_us: self.hist.max(),
            deliveries,
            memory_total: self.memory.0,
            memory_per_origin: self.memory.1,
            memory_parts: self.memory_parts,
            dropped: self.dropped_in_window,
        };
        // Judging: every counted origin's frames against every other counted node.
        let mut missed = 0u64;
        let mut heal_last = self.heal_last;
        let mut unhealed = false;
        let mut same_side_missed = 0u64;
        let mut cross_lost = 0u64;
        let late = self.late_us.unwrap_or(0);
        let survivors = self.survivors as u64;
        for (o, recs) in self.frames.iter().enumerate() {
            if !self.counted[o] {
                continue;
            }
            let same = u64::from(self.side_size[usize::from(self.side[o])]);
            for r in recs {
                if r.orig_us < self.w0 || r.orig_us > self.judge_to {
                    continue;
                }
                let want = survivors - 1;
                let got = u64::from(r.got);
                let same_got = u64::from(r.got_same_side);
                // A partition: from the last interval before it, same-side misses and losses
                // across the cut are counted apart; only what follows the heal is judged.
                let cut_off = self.w1.saturating_sub(us(self.cfg.interval));
                if self.fault == Fault::Partition && r.orig_us >= cut_off {
                    same_side_missed += (same - 1).saturating_sub(same_got);
                    cross_lost += (survivors - same).saturating_sub(got - same_got);
                    if r.orig_us >= self.judge_from && got < want {
                        heal_last = heal_last.max((r.orig_us + late).saturating_sub(self.heal_at));
                        if r.orig_us + us(self.cfg.interval) > self.judge_to {
                            unhealed = true;
                        }
                    }
                    continue;
                }
                if got < want {
                    missed += want - got;
                    if r.orig_us >= self.judge_from {
                        heal_last = heal_last.max((r.orig_us + late).saturating_sub(self.heal_at));
                        if r.orig_us + us(self.cfg.interval) > self.judge_to {
                            unhealed = true;
                        }
                    }
                }
            }
        }
        // Every counted node knows every counted host, and has heard from it lately.
        let alive: Vec<bool> = self.nodes.iter().map(|n| n.alive).collect();
        let mut hosts_missing = 0u64;
        let mut stale = Vec::new();
        let mut stale_pairs = 0u64;
        let recent_ms = WALL_START_MS + (self.end.saturating_sub(2 * us(self.cfg.interval))) / 1000;
        for (n, node) in self.nodes.iter().enumerate() {
            if !self.counted[n] {
                continue;
            }
            let mut known = 0u64;
            for h in node.g.hosts() {
                let Some(&o) = self.names.get(&h.name) else {
                    continue;
                };
                let o = o as usize;
                if !self.counted[o] {
                    continue;
                }
                known += 1;
                if o != n && h.last_seen_ms < recent_ms {
                    stale_pairs += 1;
                    if stale.len() < 20 {
                        stale.push(Stale {
                            node: n,
                            origin: o,
                            silent_ms: WALL_START_MS + self.end / 1000 - h.last_seen_ms,
                            last_hops: h.hops,
                            distance: self.graph.distances(o, &alive)[n],
                        });
                    }
                }
            }
            hosts_missing += survivors.saturating_sub(known);
        }
        let (mean, min, max) = self.graph.degrees();
        Report {
            nodes: self.nodes.len(),
            edges: self.graph.edges.len(),
            degree: (mean, min, max),
            diameter: self.graph.diameter(&vec![true; self.nodes.len()]),
            diameter_after: self.graph.diameter(&alive),
            fault: self.fault,
            killed: self.victims.len(),
            sim_s: self.end as f64 / 1e6,
            wall,
            events: self.events,
            steady,
            missed,
            hosts_missing,
            stale_pairs,
            stale,
            heal: Heal {
                time_us: heal_last,
                healed: !unhealed,
                late: self.late,
                late_threshold_us: late,
            },
            partition: (self.fault == Fault::Partition).then(|| PartitionFigures {
                half_diameters: [0u8, 1].map(|h| {
                    let mask: Vec<bool> = self.side.iter().map(|s| *s == h).collect();
                    self.graph.diameter(&mask)
                }),
                duration_s: (self.heal_at - self.w1) as f64 / 1e6,
                cut_links: self
                    .links
                    .iter()
                    .filter(|l| self.side[l.a] != self.side[l.b])
                    .count(),
                same_side_missed,
                cross_lost,
            }),
        }
    }
}
