"""Agents: the protocol, the registry, the privileged expert and reference agents."""
