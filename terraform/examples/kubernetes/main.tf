# An edge fleet as a Kubernetes deployment: autoscaled, disruption-budgeted, non-root,
# read-only, joining an existing coordinator.

module "edge_fleet" {
  source = "../../modules/edge-fleet/kubernetes"

  coordinator_url = var.coordinator_url
  node_token      = var.node_token
  kv_url          = var.kv_url
  image_version   = var.image_version
  node_region     = var.node_region
  node_labels     = { fleet = "kubernetes" }

  ingress_from = {
    cidr_blocks      = var.coordinator_cidr_blocks
    namespace_labels = [var.monitoring_namespace_labels]
  }
}
