"""Every data option of conf/data/, imported so that each stores its schema (a command that
composes `data` imports this module). A new option adds its module here."""

import digits.data.emnist
import digits.data.folder
import digits.data.mix
import digits.data.mnist
import digits.data.numbers
import digits.data.qmnist
import digits.data.unlabelled
import digits.data.usps  # noqa: F401
