"""The models: the networks (networks.py, chosen in conf/model/), the LightningModule that wraps them
with the input contract (classifier.py), temperature scaling (calibration.py) and loading a model
from its checkpoint alone (checkpoint.py).

Checkpoints name their network by `_target_` (e.g. digits.models.MLP), hence these names here (the
networks need torch only, not Lightning)."""

from digits.models.networks import CNN, MLP, LeNet, LSTMReader

__all__ = ["CNN", "MLP", "LSTMReader", "LeNet"]
