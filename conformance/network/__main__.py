"""`python -m conformance.network`: the child side of a NetworkProcess (conformance.network.process), not a
command for people (`deg-conformance sandbox` is)."""
import sys

from conformance.network.process import child

sys.exit(child())
