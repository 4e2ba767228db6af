"""The schemas of conf/adaptation/, derived from the methods' constructors (their settings but the
trained model's, which come from the checkpoint) and stored when this module is imported."""

from digits.adaptation.methods import AdaBN, SelfTraining
from digits.config.schema import schema_of, store_schemas

store_schemas(
    **{
        method.method: schema_of(method, target=True, leave_out=("trained",))
        for method in (AdaBN, SelfTraining)
    }
)
