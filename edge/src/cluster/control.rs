//! The control node's side: counts the followers connected to its feed, for
//! `tollgate_cluster_followers` and [`LiveNodes`] (followers + itself).

use std::sync::Arc;
use std::time::Duration;

use admin_ui::cluster::Nodes;
use prometheus::{IntGauge, Registry};

use super::LiveNodes;

/// How often the count is taken (a follower counts as gone [`admin_ui::cluster::CONNECTED_GRACE`]
/// after its last feed request ended).
pub const COUNT_INTERVAL: Duration = Duration::from_secs(1);

/// Registers `tollgate_cluster_followers` on `registry`; the returned task keeps it and
/// `live` up to date.
pub fn start(
    nodes: Nodes,
    live: Arc<LiveNodes>,
    registry: &Registry,
) -> Result<impl std::future::Future<Output = ()>, prometheus::Error> {
    let gauge = IntGauge::new(
        "tollgate_cluster_followers",
        "Control node: followers connected to its config feed",
    )?;
    registry.register(Box::new(gauge.clone()))?;
    Ok(async move {
        let mut tick = tokio::time::interval(COUNT_INTERVAL);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            let followers = nodes.connected();
            gauge.set(i64::try_from(followers).unwrap_or(i64::MAX));
            live.set(followers + 1);
        }
    })
}
