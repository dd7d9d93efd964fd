"""The reference DEG network: a correct Beckn 1.1.0 registry, gateway, BPPs and BAP that sign and verify."""
from conformance.network.participant import FAULTS, VARIATIONS
from conformance.network.sandbox import MountableNetwork, Network, NetworkConfig, start
from conformance.network.process import NetworkProcess

__all__ = ["FAULTS", "VARIATIONS", "MountableNetwork", "Network", "NetworkConfig", "NetworkProcess", "start"]
