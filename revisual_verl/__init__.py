"""ReVisual-R1 training recipe as a verl plugin.

Importing this package is cheap on purpose: verl loads :mod:`revisual_verl.plugin` through its
``verl.plugins`` entry point, and that module does the registration.
"""

__version__ = "0.1.0"
