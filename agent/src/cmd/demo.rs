//! `meshmon demo`: a mesh of local agents, then the TUI on node 1 (or, headless, a report).

use super::{Failure, stop_on_signal};
use crate::tui;
use anyhow::Context as _;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

pub async fn demo(nodes: usize, headless: bool, duration: Duration) -> Result<(), Failure> {
    use crate::demo::{DemoMesh, fresh};
    let exe = std::env::current_exe().context("cannot find the meshmon binary")?;
    let mut mesh = DemoMesh::start(&exe, nodes).map_err(|e| Failure(2, e))?;
    println!(
        "demo: {nodes} agents on 127.0.0.1 in a ring with a chord; {} has the dashboard role; files in {}",
        mesh.names[0],
        mesh.dir.display()
    );
    for ((name, target), pid) in mesh.names.iter().zip(&mesh.targets).zip(mesh.pids()) {
        println!("demo: started {name} (pid {pid}) on {target}");
    }
    if let Some(url) = &mesh.web_url {
        println!(
            "demo: web dashboard of {} at {url} (public status page: {url}status)",
            mesh.names[0]
        );
    }
    if headless {
        let stop = CancellationToken::new();
        tokio::spawn(stop_on_signal(stop.clone()));
        tokio::select! {
            _ = stop.cancelled() => return Err(Failure(1, anyhow::anyhow!("interrupted"))),
            _ = tokio::time::sleep(duration) => {}
        }
        if let Some(name) = mesh.exited().first() {
            return Err(Failure(
                1,
                anyhow::anyhow!("agent {name} exited early:\n{}", mesh.log_tail(name)),
            ));
        }
        let mut all = true;
        for (i, name) in mesh.names.iter().enumerate() {
            match mesh.status(i).await {
                Ok(s) => {
                    let seen = fresh(&s);
                    let ok = seen.len() == nodes;
                    all &= ok;
                    println!(
                        "{name}: saw {}/{nodes} hosts{}",
                        seen.len(),
                        if ok { "" } else { "  <- incomplete" }
                    );
                }
                Err(e) => {
                    all = false;
                    println!("{name}: no answer ({e:#})");
                }
            }
        }
        println!();
        // The dashboard's store, as `meshmon query hosts` shows it.
        let store = mesh.dir.join("store.db");
        let q = meshmon_dashboard::cli::Query {
            db: &store,
            format: meshmon_dashboard::cli::Format::Table,
            now_ms: meshmon_dashboard::time::now_ms(),
        };
        match q.hosts() {
            Ok(out) => {
                println!("store of {} ({}):", mesh.names[0], store.display());
                print!("{}", out.text);
            }
            Err(e) => println!("store of {}: {e}", mesh.names[0]),
        }
        drop(mesh);
        if all {
            println!("demo: ok, every node saw every host");
            Ok(())
        } else {
            Err(Failure(1, anyhow::anyhow!("not every node saw every host")))
        }
    } else {
        // The agents need a moment to bind; the UI says "connecting" until node 1 answers.
        let target = tui::Target {
            addr: mesh.targets[0].clone(),
            keyring: mesh.keyring.clone(),
            start_hint: format!("meshmon demo (its agents log to {})", mesh.dir.display()),
            store: Some(mesh.dir.join("store.db")),
            maintenance: Vec::new(),
        };
        let result = tui::run(target).await;
        drop(mesh);
        result?;
        println!("demo: stopped every agent and removed the temporary files");
        Ok(())
    }
}
