"""The models: the networks (networks.py, chosen in conf/model/), the LightningModule that wraps them
with the input contract (classifier.py; number_reader.py for crnn.py's strips, by modules.py), temperature scaling (calibration.py) and loading a model
from its checkpoint alone (checkpoint.py).

Checkpoints name their network by `_target_` (e.g. digits.models.MLP), hence these names here (the
networks need torch only, not Lightning)."""

from digits.models.crnn import CRNN
from digits.models.networks import CNN, DIGIT_NETWORKS, MLP, LeNet, LSTMReader

NETWORKS = (*DIGIT_NETWORKS, CRNN)  # what conf/model/ chooses from

__all__ = ["CNN", "CRNN", "MLP", "NETWORKS", "LSTMReader", "LeNet"]
