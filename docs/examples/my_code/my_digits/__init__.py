"""Your own code for digits, no fork: a network (nets.py) and a data module (data.py), named by
`_target_` in the options of your own config folder (../conf)."""

from my_digits.data import NpzDigits
from my_digits.nets import TinyNet

__all__ = ["NpzDigits", "TinyNet"]
