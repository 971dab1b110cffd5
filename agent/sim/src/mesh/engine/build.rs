//! Building a run: the graph, one real `Gossip` per node with its keyring and sample
//! encoder, the links, and the first events (dials, samples, the fault).

use super::*;

impl Sim {
    pub(in crate::mesh) fn new(cfg: &MeshConfig, fault: Fault) -> Result<Sim, SimError> {
        let mut rng = StdRng::seed_from_u64(cfg.seed);
        let n = cfg.nodes;
        let graph = Graph::random(n, cfg.min_degree, cfg.max_degree, cfg.mean_degree, &mut rng);
        if !graph.connected(&vec![true; n]) {
            return Err(SimError::Config("the random graph is not connected".into()));
        }
        let key = Key::from_base64(KEY).map_err(|e| SimError::Config(format!("key: {e}")))?;
        let keyring =
            Keyring::new(vec![key]).map_err(|e| SimError::Config(format!("keyring: {e}")))?;
        let dashboards: Vec<usize> = (0..cfg.dashboards).collect();
        let mut counted = vec![true; n];
        let mut victims = Vec::new();
        let mut side = vec![0u8; n];
        match fault {
            Fault::Kill => {
                let k = (n as f64 * cfg.kill_fraction).round() as usize;
                victims = graph.victims(k, &dashboards, &mut rng).ok_or_else(|| {
                    SimError::Config(format!("no {k} victims leave the graph connected"))
                })?;
                for &v in &victims {
                    counted[v] = false;
                }
            }
            Fault::Partition => {
                side = graph
                    .halves(&mut rng)
                    .ok_or_else(|| SimError::Config("no two connected halves found".into()))?;
            }
        }
        let side_size = [
            side.iter().filter(|s| **s == 0).count() as u32,
            side.iter().filter(|s| **s == 1).count() as u32,
        ];
        let interval_ms = u64::try_from(cfg.interval.as_millis()).unwrap_or(u64::MAX);
        let mut nodes = Vec::with_capacity(n);
        let mut names = HashMap::with_capacity(n);
        for i in 0..n {
            let name = format!("host-{i:05}");
            let dashboard = i < cfg.dashboards;
            let mut gc = GossipConfig::new(&name, WALL_START_MS * 1000 + i as u64, cfg.max_hops);
            gc.window = cfg.window;
            gc.deliver_all = dashboard;
            gc.backfill = dashboard;
            names.insert(name, i as u32);
            nodes.push(Node {
                g: Gossip::new(gc, keyring.clone()),
                alive: true,
                peers: Vec::new(),
                next_peer: 1,
                values: Values::new(
                    i,
                    n,
                    cfg.series.saturating_sub(4).max(3),
                    crate::config::Pattern::RandomWalk,
                    cfg.seed,
                ),
                encoder: SampleEncoder::new(),
                info: HostInfo {
                    os: "Debian GNU/Linux 13 (trixie)".into(),
                    kernel: "6.12.48+deb13-amd64".into(),
                    arch: "x86_64".into(),
                    version: env!("CARGO_PKG_VERSION").into(),
                    tags: vec!["sim".into(), format!("rack-{}", i % 40)],
                    interval_ms,
                    boot_time_s: WALL_START_MS / 1000 - 86_400 - i as u64,
                    cores: 4 + (i % 4) as u32 * 4,
                    dashboard,
                },
                next_info_us: 0,
                grid: TickGrid::new(TICK_US),
                phase: 0,
                armed: 0,
                seq: 0,
                rx: [(0, 0); 3],
                deliveries: 0,
            });
        }
        let (lo, hi) = (us(cfg.latency.0), us(cfg.latency.1));
        let links = graph
            .edges
            .iter()
            .map(|&(a, b)| Link {
                a,
                b,
                base_us: if hi > lo {
                    rng.random_range(lo..=hi)
                } else {
                    lo
                },
                up: false,
                conn: 0,
                peer_a: 0,
                peer_b: 0,
                fifo: [0, 0],
                attempt: 0,
                dialing: false,
                backoff_us: us(BACKOFF_START),
                started_us: 0,
            })
            .collect();
        // Aligned nodes: the window starts (and the fault strikes) FAULT_PHASE after a
        // boundary, the worst phase for healing.
        let phase = if cfg.aligned {
            us(super::super::FAULT_PHASE)
        } else {
            0
        };
        let w0 = us(cfg.warmup) + phase;
        let w1 = w0 + us(cfg.measure);
        let (heal_at, end) = match fault {
            Fault::Kill => (w1, w1 + us(cfg.after)),
            Fault::Partition => {
                let h = w1 + us(cfg.partition);
                (h, h + us(cfg.after))
            }
        };
        let judge_from = match fault {
            Fault::Kill => w1.saturating_sub(us(cfg.interval)),
            Fault::Partition => heal_at,
        };
        let survivors = counted.iter().filter(|c| **c).count();
        Ok(Sim {
            cfg: cfg.clone(),
            fault,
            graph,
            rng,
            now: 0,
            heap: BinaryHeap::new(),
            seq: 0,
            events: 0,
            nodes,
            links,
            names,
            frames: vec![Vec::new(); n],
            out: Vec::new(),
            counted,
            survivors,
            victims,
            side,
            side_size,
            partitioned: false,
            w0,
            w1,
            end,
            heal_at,
            judge_from,
            judge_to: end - us(cfg.drain),
            late_us: None,
            heal_last: 0,
            late: 0,
            hist: Histogram::default(),
            memory: (Spread::default(), Spread::default()),
            memory_parts: [0.0; 4],
            dropped_at_w0: 0,
            dropped_in_window: 0,
        })
    }
}
