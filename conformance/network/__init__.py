"""The reference DEG network: a correct Beckn 1.1.0 registry, gateway, BPPs and BAP that sign and verify."""
from conformance.network.participant import FAULTS
from conformance.network.sandbox import MountableNetwork, Network, NetworkConfig, start

__all__ = ["FAULTS", "MountableNetwork", "Network", "NetworkConfig", "start"]
