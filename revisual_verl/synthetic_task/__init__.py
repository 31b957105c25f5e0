"""A seeded synthetic task, small enough for a tiny model to learn, written in the raw GRAMMAR layouts.

Image problems ask for the sum of a seven-segment digit drawn in a picture and digits given in the text; text
problems ask for the sum of digits given in the text. ``python -m revisual_verl.synthetic_task.generate`` writes
the cold-start, mmrl and textrl files that ``revisual-data prepare`` converts, plus held-out files whose problems
training never sees. Nothing is imported here, so the plugin, which never uses this package, stays light.
"""
