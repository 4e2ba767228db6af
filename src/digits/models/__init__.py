"""The models: the networks (conf/model/), the LightningModule that wraps them, loading checkpoints.

Checkpoints name their network by `_target_` (e.g. digits.models.MLP), hence the names here."""

from digits.models.checkpoint import load_classifier
from digits.models.classifier import DigitClassifier
from digits.models.networks import CNN, MLP, NUM_CLASSES, LeNet

__all__ = ["CNN", "MLP", "NUM_CLASSES", "DigitClassifier", "LeNet", "load_classifier"]
