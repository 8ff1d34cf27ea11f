"""gpunet: an open-source decentralized GPU cloud."""

__version__ = "0.1.0"
