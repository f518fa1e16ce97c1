"""``python -m stridelab`` (also what ``torchrun -m stridelab`` runs)."""

from stridelab.cli import entry

entry()
