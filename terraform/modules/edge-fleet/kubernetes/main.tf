locals {
  listen_port = 7070
  state_dir   = "/var/lib/nexus-edge"

  image = startswith(var.image_version, "sha256:") ? "${var.image_repository}@${var.image_version}" : "${var.image_repository}:${var.image_version}"

  selector = {
    "app.kubernetes.io/name"     = "nexus-edge"
    "app.kubernetes.io/instance" = var.name
  }
  labels = merge(var.labels, local.selector, {
    "app.kubernetes.io/part-of"    = "sirsinexus"
    "app.kubernetes.io/component"  = "edge-node"
    "app.kubernetes.io/managed-by" = "terraform"
  })

  namespace   = var.create_namespace ? kubernetes_namespace_v1.this[0].metadata[0].name : var.namespace
  secret_name = var.existing_secret_name != "" ? var.existing_secret_name : kubernetes_secret_v1.this[0].metadata[0].name

  args = concat(
    [
      "--region", var.node_region,
      "--listen", "0.0.0.0:${local.listen_port}",
      # Kubernetes expands $(POD_IP) from the container's environment.
      "--advertise", "http://$(POD_IP):${local.listen_port}",
      "--state-dir", local.state_dir,
    ],
    flatten([for key, value in var.node_labels : ["--label", "${key}=${value}"]]),
    var.instance_slots > 0 ? ["--instance-slots", tostring(var.instance_slots)] : [],
  )
}

resource "kubernetes_namespace_v1" "this" {
  count = var.create_namespace ? 1 : 0

  metadata {
    name = var.namespace
    labels = merge(var.labels, {
      "pod-security.kubernetes.io/enforce" = "restricted"
      "pod-security.kubernetes.io/warn"    = "restricted"
    })
  }
}

resource "kubernetes_service_account_v1" "this" {
  metadata {
    name      = var.name
    namespace = local.namespace
    labels    = local.labels
  }

  # The node never talks to the Kubernetes API.
  automount_service_account_token = false
}

resource "kubernetes_secret_v1" "this" {
  count = var.existing_secret_name == "" ? 1 : 0

  metadata {
    name      = var.name
    namespace = local.namespace
    labels    = local.labels
  }

  data = merge(
    { NEXUS_NODE_TOKEN = var.node_token },
    var.kv_url == "" ? {} : { NEXUS_KV = var.kv_url },
    var.kv_cache_url == "" ? {} : { NEXUS_KV_CACHE = var.kv_cache_url },
  )

  lifecycle {
    precondition {
      condition     = var.node_token != ""
      error_message = "Set node_token, or existing_secret_name to a secret holding NEXUS_NODE_TOKEN."
    }
  }
}

resource "kubernetes_deployment_v1" "this" {
  #checkov:skip=CKV_K8S_35:nexus-edge takes its join token only from --token or NEXUS_NODE_TOKEN (it has no token-file flag), so the token must be an environment variable; it comes from a Secret through envFrom, never from the pod spec.
  #checkov:skip=CKV_K8S_43:The image is pinned by var.image_version, which takes a release tag (the default) or a sha256 digest; a digest default would go stale with every release.
  metadata {
    name      = var.name
    namespace = local.namespace
    labels    = local.labels
  }

  spec {
    replicas = var.min_replicas

    selector {
      match_labels = local.selector
    }

    strategy {
      type = "RollingUpdate"

      rolling_update {
        max_surge       = "25%"
        max_unavailable = "0"
      }
    }

    template {
      metadata {
        labels = local.labels
        annotations = {
          "prometheus.io/scrape" = "true"
          "prometheus.io/port"   = tostring(local.listen_port)
          "prometheus.io/path"   = "/metrics"
        }
      }

      spec {
        service_account_name             = kubernetes_service_account_v1.this.metadata[0].name
        automount_service_account_token  = false
        enable_service_links             = false
        termination_grace_period_seconds = 60
        node_selector                    = var.node_selector

        security_context {
          run_as_non_root = true
          run_as_user     = var.run_as_user
          run_as_group    = var.run_as_user
          fs_group        = var.run_as_user

          seccomp_profile {
            type = "RuntimeDefault"
          }
        }

        dynamic "toleration" {
          for_each = var.tolerations

          content {
            key      = toleration.value.key
            operator = toleration.value.operator
            value    = toleration.value.value
            effect   = toleration.value.effect
          }
        }

        topology_spread_constraint {
          max_skew           = 1
          topology_key       = "topology.kubernetes.io/zone"
          when_unsatisfiable = "ScheduleAnyway"

          label_selector {
            match_labels = local.selector
          }
        }

        container {
          name              = "nexus-edge"
          image             = local.image
          image_pull_policy = "Always"
          args              = local.args

          port {
            name           = "http"
            container_port = local.listen_port
            protocol       = "TCP"
          }

          env {
            name = "POD_IP"

            value_from {
              field_ref {
                field_path = "status.podIP"
              }
            }
          }

          env {
            name = "NEXUS_NODE_NAME"

            value_from {
              field_ref {
                field_path = "metadata.name"
              }
            }
          }

          env {
            name  = "NEXUS_COORDINATOR"
            value = var.coordinator_url
          }

          env {
            name  = "RUST_LOG"
            value = var.log_level
          }

          # NEXUS_NODE_TOKEN, and NEXUS_KV / NEXUS_KV_CACHE when the secret has them.
          env_from {
            secret_ref {
              name = local.secret_name
            }
          }

          resources {
            requests = {
              cpu    = var.cpu_request
              memory = var.memory_request
            }
            limits = {
              cpu    = var.cpu_limit
              memory = var.memory_limit
            }
          }

          startup_probe {
            http_get {
              path = "/healthz"
              port = "http"
            }

            period_seconds    = 2
            failure_threshold = 30
          }

          liveness_probe {
            http_get {
              path = "/healthz"
              port = "http"
            }

            period_seconds    = 10
            timeout_seconds   = 2
            failure_threshold = 3
          }

          # Ready once registered with the coordinator.
          readiness_probe {
            http_get {
              path = "/readyz"
              port = "http"
            }

            period_seconds    = 5
            timeout_seconds   = 2
            failure_threshold = 2
          }

          security_context {
            allow_privilege_escalation = false
            privileged                 = false
            read_only_root_filesystem  = true
            run_as_non_root            = true
            run_as_user                = var.run_as_user
            run_as_group               = var.run_as_user

            capabilities {
              drop = ["ALL"]
            }
          }

          volume_mount {
            name       = "state"
            mount_path = local.state_dir
          }

          volume_mount {
            name       = "tmp"
            mount_path = "/tmp"
          }
        }

        volume {
          name = "state"

          empty_dir {
            size_limit = var.state_size_limit
          }
        }

        volume {
          name = "tmp"

          empty_dir {
            size_limit = "256Mi"
          }
        }
      }
    }
  }

  # The autoscaler owns the replica count once the deployment exists.
  lifecycle {
    ignore_changes = [spec[0].replicas]
  }
}

resource "kubernetes_horizontal_pod_autoscaler_v2" "this" {
  metadata {
    name      = var.name
    namespace = local.namespace
    labels    = local.labels
  }

  spec {
    min_replicas = var.min_replicas
    max_replicas = var.max_replicas

    scale_target_ref {
      api_version = "apps/v1"
      kind        = "Deployment"
      name        = kubernetes_deployment_v1.this.metadata[0].name
    }

    metric {
      type = "Resource"

      resource {
        name = "cpu"

        target {
          type                = "Utilization"
          average_utilization = var.target_cpu_utilization
        }
      }
    }

    # Scale in slowly: a leaving node drains its invocations first.
    behavior {
      scale_down {
        stabilization_window_seconds = 300
        select_policy                = "Max"

        policy {
          type           = "Pods"
          value          = 1
          period_seconds = 60
        }
      }
    }
  }
}

resource "kubernetes_pod_disruption_budget_v1" "this" {
  metadata {
    name      = var.name
    namespace = local.namespace
    labels    = local.labels
  }

  spec {
    max_unavailable = tostring(var.max_unavailable)

    selector {
      match_labels = local.selector
    }
  }
}

resource "kubernetes_network_policy_v1" "this" {
  count = var.ingress_from == null ? 0 : 1

  metadata {
    name      = var.name
    namespace = local.namespace
    labels    = local.labels
  }

  spec {
    pod_selector {
      match_labels = local.selector
    }

    policy_types = ["Ingress"]

    # An ingress rule without sources would admit everyone.

    ingress {
      ports {
        port     = tostring(local.listen_port)
        protocol = "TCP"
      }

      dynamic "from" {
        for_each = var.ingress_from.cidr_blocks

        content {
          ip_block {
            cidr = from.value
          }
        }
      }

      dynamic "from" {
        for_each = var.ingress_from.namespace_labels

        content {
          namespace_selector {
            match_labels = from.value
          }
        }
      }
    }
  }

  lifecycle {
    precondition {
      condition     = length(var.ingress_from.cidr_blocks) + length(var.ingress_from.namespace_labels) > 0
      error_message = "ingress_from needs at least one CIDR block or namespace selector (an empty one would admit everyone)."
    }
  }
}
