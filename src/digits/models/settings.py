"""The schemas of conf/model/ and conf/module/, derived from the constructors that declare their
settings (the networks', DigitClassifier's) and stored when this module is imported (digits.train
does). Apart from the models themselves: loading a checkpoint needs no config machinery."""

from digits.config.schema import schema_of, store_schemas
from digits.models import NETWORKS
from digits.models.classifier import DigitClassifier
from digits.models.number_reader import NumberReader

store_schemas(
    # The network, optimizer and schedule are groups of their own.
    module=schema_of(DigitClassifier, leave_out=("net", "optimizer", "scheduler")),
    module_sequence=schema_of(NumberReader, leave_out=("net", "optimizer", "scheduler")),
    **{network.__name__.lower(): schema_of(network, target=True) for network in NETWORKS},
)
