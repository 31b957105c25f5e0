"""Fixtures shared by the PAD tests that drive verl's v1 trainer classes."""

from helpers.v1_trainer import transfer_queue, wire_pad_trainer  # noqa: F401  fixtures
