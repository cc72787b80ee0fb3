"""anchorsplat: photo -> identity-anchored synthetic clips -> rigged Gaussian-splat avatar."""

__version__ = "0.1.0"
