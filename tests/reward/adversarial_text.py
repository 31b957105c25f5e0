"""Text shaped to make a backtracking regular expression blow up, for the reward's in-process hang guards.

Super-linear matching comes from long runs that a pattern can split between two quantifiers, and from
every start position re-scanning the same run. The shapes here are runs of the characters and tokens the
reward's patterns look for, in every order: ``a…a b…b c…c`` and ``a b…b c`` for every triple of atoms.
"""

import itertools

ATOMS = (
    "{", "}", "(", ")", "^", "1", " ", "\t", "!", "$", "-", ".", "/", "x", "\\{",
    "\\boxed", "\\boxed{", "\\fbox{", "\\text{", "\\left", "\\frac{", "<answer>", "</answer>", "<think>", "</think>",
)  # fmt: skip


def _run(atom: str, chars: int) -> str:
    return (atom * (chars // len(atom) + 1))[:chars]


def adversarial_texts(length: int, atoms_per_text: int = 3):
    """Every ``atoms_per_text``-tuple of atoms as thirds (or halves) of ``length`` characters, and as one long
    middle run between single atoms at either end."""
    for combo in itertools.product(ATOMS, repeat=atoms_per_text):
        part = length // atoms_per_text
        yield "".join(_run(atom, part) for atom in combo)
        yield combo[0] + _run(combo[1], length - len(combo[0]) - len(combo[-1])) + combo[-1]


def slowest(function, texts, repeats: int = 3) -> tuple[float, str]:
    """(seconds, text) of the slowest call of ``function`` over ``texts``, each text timed as the fastest of
    ``repeats`` calls: super-linear work repeats every call, while a scheduler pause or a garbage collection
    on a loaded 2-core machine (0.86 s once on CI, for a 2 ms call) does not."""
    import time

    worst = (0.0, "")
    for text in texts:
        elapsed = float("inf")
        for _ in range(repeats):
            started = time.perf_counter()
            function(text)
            elapsed = min(elapsed, time.perf_counter() - started)
        if elapsed > worst[0]:
            worst = (elapsed, text)
    return worst
