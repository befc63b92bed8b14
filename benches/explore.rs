//! How live `handgrad explore` feels: the round trip of one decode request (HTTP on
//! 127.0.0.1, JSON in and out, the decoder's forward pass) while 8 clients ask at once, as
//! when several pages drag across their maps. Percentiles, not means: a drag stutters on
//! its slowest frames. Run with `cargo bench --bench explore`.
//!
//! For each of conv-selu and mlp4 a run is trained for one epoch on 1,200 shipped images
//! (how far it trained does not change the cost of a forward pass), then 8 threads each send
//! `REQUESTS` decodes of random codes from the codes' ranges, one after another over one
//! kept-alive connection. The first request of each client (which opens the run) is left out.

use handgrad::experiments::train::train_new;
use handgrad::experiments::RunOptions;
use handgrad::explore::Server;
use handgrad::train::{RunConfig, Silent};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use std::time::{Duration, Instant};

const CLIENTS: usize = 8;
const REQUESTS: usize = 60;

fn percentile(sorted: &[Duration], p: f64) -> f64 {
    let i = ((sorted.len() - 1) as f64 * p).round() as usize;
    sorted[i].as_secs_f64() * 1e3
}

fn main() {
    let root = std::env::temp_dir().join(format!("handgrad-explore-bench-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&root);
    std::fs::create_dir_all(&root).expect("runs folder");
    println!(
        "decode round trips, {CLIENTS} clients at once, {REQUESTS} requests each, {} threads",
        rayon::current_num_threads()
    );
    println!(
        "{:<10} {:>9} {:>9} {:>9} {:>10}",
        "preset", "p50 ms", "p99 ms", "max ms", "requests/s"
    );
    for preset in ["conv-selu", "mlp4"] {
        let mut cfg = RunConfig::preset(preset).expect("preset");
        cfg.train.epochs = 1;
        cfg.split.max_samples = Some(1200);
        train_new(
            cfg.clone(),
            &root.join(preset),
            &RunOptions::default(),
            &mut Silent,
        )
        .expect("trained");
        let server = Server::bind("127.0.0.1", 0, &root, RunOptions::default()).expect("bound");
        let base = format!("http://{}", server.addr().expect("an address"));
        let (stop, handle) = server.spawn();
        let url = format!("{base}/api/runs/{preset}/decode");
        let latent = cfg.model.latent;
        let started = Instant::now();
        let mut times: Vec<Duration> = std::thread::scope(|s| {
            let clients: Vec<_> = (0..CLIENTS)
                .map(|c| {
                    let url = url.clone();
                    s.spawn(move || {
                        let agent = ureq::AgentBuilder::new().build();
                        let mut rng = StdRng::seed_from_u64(c as u64);
                        let mut times = Vec::with_capacity(REQUESTS);
                        for i in 0..=REQUESTS {
                            let code: Vec<f32> =
                                (0..latent).map(|_| rng.random_range(-3.0..3.0)).collect();
                            let body = serde_json::json!({ "code": code }).to_string();
                            let t = Instant::now();
                            let reply = agent
                                .post(&url)
                                .send_string(&body)
                                .expect("decoded")
                                .into_string()
                                .expect("a body");
                            let elapsed = t.elapsed();
                            assert!(reply.starts_with("{\"pixels\":["));
                            if i > 0 {
                                times.push(elapsed);
                            }
                        }
                        times
                    })
                })
                .collect();
            clients
                .into_iter()
                .flat_map(|c| c.join().expect("a client"))
                .collect()
        });
        let wall = started.elapsed().as_secs_f64();
        times.sort();
        println!(
            "{:<10} {:>9.2} {:>9.2} {:>9.2} {:>10.0}",
            preset,
            percentile(&times, 0.5),
            percentile(&times, 0.99),
            percentile(&times, 1.0),
            times.len() as f64 / wall
        );
        stop.store(true, std::sync::atomic::Ordering::SeqCst);
        handle.join().expect("the server stops");
    }
    let _ = std::fs::remove_dir_all(&root);
}
