# Edge nodes join over gRPC without TLS (`nexus-edge --coordinator http://…`), so they reach the
# coordinator through an internal network load balancer that passes TCP through, never through
# the internet-facing HTTPS load balancer.

resource "aws_security_group" "nodes_endpoint" {
  count = var.node_endpoint_enabled ? 1 : 0

  name        = "${var.name}-nodes-endpoint"
  description = "SirsiNexus coordinator ${var.name}: internal endpoint edge nodes join through"
  vpc_id      = var.vpc_id

  tags = merge(var.tags, { Name = "${var.name}-nodes-endpoint" })
}

resource "aws_vpc_security_group_ingress_rule" "nodes_endpoint_from_cidr" {
  for_each = var.node_endpoint_enabled ? toset(var.node_cidr_blocks) : toset([])

  security_group_id = aws_security_group.nodes_endpoint[0].id
  description       = "Edge nodes in ${each.value} joining the cluster"
  ip_protocol       = "tcp"
  from_port         = local.container_port
  to_port           = local.container_port
  cidr_ipv4         = each.value
}

resource "aws_vpc_security_group_egress_rule" "nodes_endpoint_to_tasks" {
  count = var.node_endpoint_enabled ? 1 : 0

  security_group_id            = aws_security_group.nodes_endpoint[0].id
  description                  = "Edge-node connections and health checks to the coordinator tasks"
  ip_protocol                  = "tcp"
  from_port                    = local.container_port
  to_port                      = local.container_port
  referenced_security_group_id = aws_security_group.tasks.id
}

resource "aws_vpc_security_group_ingress_rule" "tasks_from_nodes_endpoint" {
  count = var.node_endpoint_enabled ? 1 : 0

  security_group_id            = aws_security_group.tasks.id
  description                  = "Edge-node gRPC from the node endpoint"
  ip_protocol                  = "tcp"
  from_port                    = local.container_port
  to_port                      = local.container_port
  referenced_security_group_id = aws_security_group.nodes_endpoint[0].id
}

resource "aws_lb" "nodes" {
  count = var.node_endpoint_enabled ? 1 : 0
  #checkov:skip=CKV_AWS_91:Network load balancers only log TLS listeners; this one passes plain TCP through, so there is nothing to log.

  name               = "${var.name}-nodes"
  internal           = true
  load_balancer_type = "network"
  security_groups    = [aws_security_group.nodes_endpoint[0].id]
  subnets            = var.private_subnet_ids

  enable_cross_zone_load_balancing = true
  enable_deletion_protection       = var.deletion_protection

  tags = var.tags
}

resource "aws_lb_target_group" "nodes" {
  count = var.node_endpoint_enabled ? 1 : 0

  name        = "${var.name}-nodes"
  port        = local.container_port
  protocol    = "TCP"
  target_type = "ip"
  vpc_id      = var.vpc_id

  deregistration_delay = 30
  # A node's gRPC stream is long-lived: cut it when its replica leaves so the node reconnects
  # to a live one.
  connection_termination = true

  health_check {
    enabled             = true
    protocol            = "HTTP"
    path                = "/readyz"
    port                = "traffic-port"
    matcher             = "200"
    interval            = 10
    healthy_threshold   = 2
    unhealthy_threshold = 2
  }

  tags = var.tags
}

resource "aws_lb_listener" "nodes" {
  count = var.node_endpoint_enabled ? 1 : 0

  load_balancer_arn = aws_lb.nodes[0].arn
  port              = local.container_port
  protocol          = "TCP"

  default_action {
    type             = "forward"
    target_group_arn = aws_lb_target_group.nodes[0].arn
  }

  tags = var.tags
}
