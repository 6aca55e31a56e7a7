# Ten rules of the kinds an organisation writes, for `lint`'s benchmark (docs/performance.md).
package main

calico_policy if input.kind in {"NetworkPolicy", "GlobalNetworkPolicy"}

deny contains msg if {
	calico_policy
	not input.spec.selector
	msg := sprintf("%s has no selector", [input.metadata.name])
}

deny_order contains msg if {
	calico_policy
	input.spec.order < 10
	msg := sprintf("%s: order %v is reserved", [input.metadata.name, input.spec.order])
}

deny_allow_all contains msg if {
	some i, rule in input.spec.ingress
	rule.action == "Allow"
	not rule.source
	not rule.protocol
	msg := sprintf("%s: ingress[%d] allows everything", [input.metadata.name, i])
}

deny_metadata contains msg if {
	some rule in input.spec.egress
	some cidr in rule.destination.nets
	net.cidr_intersects(cidr, "169.254.169.254/32")
	msg := sprintf("%s reaches the metadata service", [input.metadata.name])
}

deny_wide_nets contains msg if {
	some rule in input.spec.ingress
	some cidr in rule.source.nets
	endswith(cidr, "/0")
	msg := sprintf("%s admits %s", [input.metadata.name, cidr])
}

violation_tier contains {"msg": msg} if {
	calico_policy
	input.spec.tier
	not input.spec.tier in {"security", "platform", "app-a", "app-b", "default"}
	msg := sprintf("%s: unknown tier %s", [input.metadata.name, input.spec.tier])
}

violation_name contains {"msg": msg} if {
	calico_policy
	tier := object.get(input.spec, "tier", "default")
	tier != "default"
	not startswith(input.metadata.name, concat("", [tier, "."]))
	msg := sprintf("%s is not prefixed by its tier", [input.metadata.name])
}

warn_types contains msg if {
	calico_policy
	not input.spec.types
	msg := sprintf("%s has no types", [input.metadata.name])
}

warn_labels contains msg if {
	input.kind == "NetworkPolicy"
	count(object.get(input.metadata, "labels", {})) == 0
	msg := sprintf("%s has no labels", [input.metadata.name])
}

warn_many_rules contains msg if {
	calico_policy
	count(object.get(input.spec, "ingress", [])) + count(object.get(input.spec, "egress", [])) > 20
	msg := sprintf("%s has more than 20 rules", [input.metadata.name])
}
