resource "aws_security_group" "this" {
  name        = "${var.name}-edge-nodes"
  description = "SirsiNexus edge fleet ${var.name}"
  vpc_id      = var.vpc_id

  tags = merge(var.tags, { Name = "${var.name}-edge-nodes" })
}

## The coordinator dials the nodes (gRPC invocations) on their listen port.

resource "aws_vpc_security_group_ingress_rule" "from_coordinator" {
  count = length(var.coordinator_security_group_ids)

  security_group_id            = aws_security_group.this.id
  description                  = "Invocations from the coordinator"
  ip_protocol                  = "tcp"
  from_port                    = local.listen_port
  to_port                      = local.listen_port
  referenced_security_group_id = var.coordinator_security_group_ids[count.index]
}

resource "aws_vpc_security_group_egress_rule" "coordinator_to_nodes" {
  count = length(var.coordinator_security_group_ids)

  security_group_id            = var.coordinator_security_group_ids[count.index]
  description                  = "Invocations to the edge fleet ${var.name}"
  ip_protocol                  = "tcp"
  from_port                    = local.listen_port
  to_port                      = local.listen_port
  referenced_security_group_id = aws_security_group.this.id
}

## The nodes join (register, heartbeat) through the coordinator's node endpoint.

resource "aws_vpc_security_group_egress_rule" "to_coordinator_endpoint" {
  count = length(var.coordinator_endpoint_security_group_ids)

  security_group_id            = aws_security_group.this.id
  description                  = "Joining the coordinator"
  ip_protocol                  = "tcp"
  from_port                    = var.coordinator_endpoint_port
  to_port                      = var.coordinator_endpoint_port
  referenced_security_group_id = var.coordinator_endpoint_security_group_ids[count.index]
}

resource "aws_vpc_security_group_ingress_rule" "coordinator_endpoint_from_nodes" {
  count = length(var.coordinator_endpoint_security_group_ids)

  security_group_id            = var.coordinator_endpoint_security_group_ids[count.index]
  description                  = "Edge fleet ${var.name} joining the cluster"
  ip_protocol                  = "tcp"
  from_port                    = var.coordinator_endpoint_port
  to_port                      = var.coordinator_endpoint_port
  referenced_security_group_id = aws_security_group.this.id
}

## Everything else.

resource "aws_vpc_security_group_ingress_rule" "metrics" {
  for_each = toset(var.metrics_cidr_blocks)

  security_group_id = aws_security_group.this.id
  description       = "Metrics and health probes from ${each.value}"
  ip_protocol       = "tcp"
  from_port         = local.listen_port
  to_port           = local.listen_port
  cidr_ipv4         = each.value
}

resource "aws_vpc_security_group_egress_rule" "outbound" {
  for_each = toset([for port in var.outbound_ports : tostring(port)])

  security_group_id = aws_security_group.this.id
  description       = "TCP ${each.value} to any address (AWS APIs, the binary, functions' outbound HTTP)"
  ip_protocol       = "tcp"
  from_port         = tonumber(each.value)
  to_port           = tonumber(each.value)
  cidr_ipv4         = "0.0.0.0/0"
}

resource "aws_vpc_security_group_egress_rule" "additional" {
  count = length(var.additional_egress_rules)

  security_group_id            = aws_security_group.this.id
  description                  = var.additional_egress_rules[count.index].description
  ip_protocol                  = "tcp"
  from_port                    = var.additional_egress_rules[count.index].port
  to_port                      = var.additional_egress_rules[count.index].port
  cidr_ipv4                    = var.additional_egress_rules[count.index].cidr_ipv4
  referenced_security_group_id = var.additional_egress_rules[count.index].security_group_id
}
