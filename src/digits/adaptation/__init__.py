"""Adapting a trained model to new images without their labels (digits.adapt)."""

from digits.adaptation.methods import AdaBN, SelfTraining

__all__ = ["AdaBN", "SelfTraining"]
