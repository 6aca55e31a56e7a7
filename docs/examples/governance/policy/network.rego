# The organisation's network-policy rules, in Rego v1, for Conftest and flowtrace alike:
#   conftest test --policy policy --data data manifests.yaml
#   flowtrace lint --policy policy --data data manifests.yaml
package main

# Ingress from addresses outside the cluster only from the partner ranges in data.
deny contains msg if {
	input.kind in {"NetworkPolicy", "GlobalNetworkPolicy"}
	some i, rule in input.spec.ingress
	rule.action == "Allow"
	some cidr in rule.source.nets
	not partner(cidr)
	msg := sprintf("%s %s: spec.ingress[%d] allows %s, which is not a partner range", [input.kind, input.metadata.name, i, cidr])
}

partner(cidr) if {
	some range in data.partners
	net.cidr_contains(range, cidr)
}

# Nothing may allow egress to the cloud metadata service.
deny_metadata contains msg if {
	some i, rule in input.spec.egress
	rule.action == "Allow"
	some cidr in rule.destination.nets
	net.cidr_intersects(cidr, "169.254.169.254/32")
	msg := sprintf("%s: spec.egress[%d] allows %s, which reaches the cloud metadata service", [input.metadata.name, i, cidr])
}

# A Calico policy without an order is evaluated last in its tier: say so.
warn_order contains msg if {
	input.apiVersion == "projectcalico.org/v3"
	input.kind in {"NetworkPolicy", "GlobalNetworkPolicy"}
	not input.spec.order
	msg := sprintf("%s has no order: it is evaluated after every ordered policy of its tier", [input.metadata.name])
}
