//! The batched drain on a Redis Cluster of 3 masters beside one Redis server, in one run: 1, 2
//! and 3 queues, one drainer process per queue, each queue's hash tag on a master of its own.
use std::time::Duration;

use queue_core::{Keys, Queue, Task};
use test_support::cluster::OwnCluster;
use test_support::procs::OwnRedis;

use super::{Sizes, bench_task, drain_in_processes, refill};

#[derive(Debug, clap::Args)]
pub struct ClusterOptions {
    #[command(flatten)]
    sizes: Sizes,
}

/// Starts its own servers (a redis-server and a 3-master cluster without replicas, on free
/// loopback ports) and stops them at the end.
pub async fn run(options: ClusterOptions) -> anyhow::Result<()> {
    let single = OwnRedis::start();
    let cluster = OwnCluster::start(3, 0);
    let queues = queues_on_distinct_masters(&cluster);
    println!(
        "queues {} on slots {} (masters {})",
        queues.join(", "),
        queues
            .iter()
            .map(|q| cluster.keyslot(&format!("{{{q}}}")).to_string())
            .collect::<Vec<_>>()
            .join(", "),
        queues
            .iter()
            .map(|q| master_port(&cluster, q).to_string())
            .collect::<Vec<_>>()
            .join(", "),
    );
    let tasks: Vec<Task> = (0..options.sizes.tasks)
        .map(|i| bench_task(format!("run_{i}")))
        .collect();
    let mut baseline = None;
    for count in 1..=3 {
        let mut line = format!("drain, {count} queue(s), 1 process each, batched:");
        for (name, url) in [("1 server", single.url()), ("cluster", cluster.url())] {
            let rate = drain(&url, &queues[..count], &tasks, &options).await?;
            let baseline = *baseline.get_or_insert(rate);
            line += &format!(" {name} {rate:>8.0} /s ({:.2}x);", rate / baseline);
        }
        println!("{line}");
    }
    println!("(ratios against 1 queue on 1 server, measured first in this run)");
    Ok(())
}

/// Fills each queue with `tasks`, then drains them all at once, one process per queue.
async fn drain(
    url: &str,
    queues: &[String],
    tasks: &[Task],
    options: &ClusterOptions,
) -> anyhow::Result<f64> {
    let prefix = format!("bench-{}:", uuid::Uuid::new_v4().simple());
    let pool = queue_core::create_pool(url, 8)?;
    for name in queues {
        let keys = Keys::new(&prefix, name);
        let queue = Queue::new(pool.clone(), keys.clone(), Duration::from_secs(60));
        refill(&pool, &keys, &queue, tasks, options.sizes.bulk).await?;
    }
    let shares: Vec<(String, usize)> = queues.iter().map(|q| (q.clone(), tasks.len())).collect();
    let (rate, _) = drain_in_processes(&pool, url, options.sizes.batch, &prefix, &shares).await?;
    Ok(rate)
}

/// Three queue names (`q<n>`) whose hash tags land on three different masters.
fn queues_on_distinct_masters(cluster: &OwnCluster) -> Vec<String> {
    let mut chosen: Vec<(String, u16)> = Vec::new();
    for n in 0.. {
        let name = format!("q{n}");
        let master = master_port(cluster, &name);
        if !chosen.iter().any(|(_, m)| *m == master) {
            chosen.push((name, master));
        }
        if chosen.len() == 3 {
            break;
        }
    }
    chosen.into_iter().map(|(name, _)| name).collect()
}

fn master_port(cluster: &OwnCluster, queue: &str) -> u16 {
    let slot = cluster.keyslot(&format!("{{{queue}}}"));
    cluster.master_of_slot(slot).expect("every slot is served")
}
