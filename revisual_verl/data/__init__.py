"""GRAMMAR data for verl: converters for the three parts and a dataset class for mixed image/text batches.

``revisual-data prepare {coldstart|mmrl|textrl}`` (see :mod:`revisual_verl.data.cli`) turns local copies of the
raw parts into verl-ready parquet; :class:`revisual_verl.data.mixed_dataset.MixedModalRLDataset` reads the RL
output through ``data.custom_cls``.
"""
