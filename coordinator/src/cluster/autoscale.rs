//! The autoscaling signal: how many edge nodes the cluster should have for the work it has now,
//! exported as `nexus_edge_nodes_desired` for an autoscaler to follow (a Kubernetes HPA on an
//! external metric, `infra/kubernetes/`).
//!
//! Demand is the instance slots in use on the schedulable nodes (as each reported, or as this
//! coordinator counts its own invocations there, whichever is more) plus the invocations
//! waiting: in this coordinator's scheduler and in the nodes' own queues. The signal is the
//! number of nodes of the current average size that would carry that demand at the target
//! utilization, and never less than one.

/// What the cluster carries now.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Demand {
    /// Schedulable nodes.
    pub nodes: u64,
    /// Their instance slots, all together.
    pub slots: u64,
    /// Slots in use.
    pub busy: u64,
    /// Invocations waiting for a slot.
    pub queued: u64,
}

/// The share of slots a node should have in use when the cluster is the right size.
pub const DEFAULT_TARGET_UTILIZATION: f64 = 0.7;

/// Nodes assumed to have this many slots when none is there to say (a node's default).
const SLOTS_WITHOUT_NODES: u64 = 256;

/// The node count that carries `demand` at `target` utilization (0 < target ≤ 1).
pub fn desired_nodes(demand: Demand, target: f64) -> u64 {
    let slots_per_node = demand
        .slots
        .checked_div(demand.nodes)
        .map_or(SLOTS_WITHOUT_NODES, |slots| slots.max(1));
    let target = if target.is_finite() && target > 0.0 {
        target.min(1.0)
    } else {
        DEFAULT_TARGET_UTILIZATION
    };
    #[expect(
        clippy::cast_precision_loss,
        clippy::cast_possible_truncation,
        clippy::cast_sign_loss,
        reason = "slot counts are far below 2^52, and the ceiling of a positive ratio is a small positive integer"
    )]
    let wanted =
        ((demand.busy + demand.queued) as f64 / (slots_per_node as f64 * target)).ceil() as u64;
    wanted.max(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn demand(nodes: u64, slots: u64, busy: u64, queued: u64) -> Demand {
        Demand {
            nodes,
            slots,
            busy,
            queued,
        }
    }

    #[test]
    fn the_signal_follows_slot_use_and_queues_at_the_target_utilization() {
        // Idle, or no nodes and no work: one node.
        assert_eq!(desired_nodes(demand(0, 0, 0, 0), 0.7), 1);
        assert_eq!(desired_nodes(demand(4, 64, 0, 0), 0.7), 1);
        // Two nodes of 16 slots, 22 in use: 22 / (16 × 0.7) = 1.96 → 2; at 23 → 3.
        assert_eq!(desired_nodes(demand(2, 32, 22, 0), 0.7), 2);
        assert_eq!(desired_nodes(demand(2, 32, 23, 0), 0.7), 3);
        // Everything busy and 100 waiting: (32 + 100) / 11.2 → 12.
        assert_eq!(desired_nodes(demand(2, 32, 32, 100), 0.7), 12);
        // No node yet, work waiting: nodes of the default size.
        assert_eq!(desired_nodes(demand(0, 0, 0, 500), 1.0), 2);
        // A nonsense target falls back to the default.
        assert_eq!(
            desired_nodes(demand(1, 10, 10, 0), f64::NAN),
            desired_nodes(demand(1, 10, 10, 0), DEFAULT_TARGET_UTILIZATION)
        );
    }
}
