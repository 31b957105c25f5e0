"""What a generated task or a pre-trained base was made with, so that a learning run which finds one in its
WORK_DIR never goes on from files that other settings or an older tree made.

The task's generator and the base's pre-training write ``made_with.json`` into what they make: their settings and
a digest of each source file the result depends on. Asked to reuse (``--reuse``), they keep an output whose stamp
matches what they would make now and refuse one that differs, naming the difference. (Found the hard way: a base
pre-trained before the alignment term, kept in an old WORK_DIR, trained without a word of warning and left image
problems at chance.)
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
from collections.abc import Mapping, Sequence
from pathlib import Path

STAMP_FILE = "made_with.json"


class StaleOutput(Exception):
    """An output exists that was not made with the settings and sources asked for now."""


def source_digests(modules: Sequence[str]) -> dict[str, str]:
    """sha256 of each module's source file, found without importing the module itself."""
    digests = {}
    for name in modules:
        spec = importlib.util.find_spec(name)
        if spec is None or not spec.origin or not Path(spec.origin).is_file():
            raise ValueError(f"no source file for module {name}")
        digests[name] = hashlib.sha256(Path(spec.origin).read_bytes()).hexdigest()
    return digests


def make_stamp(settings: Mapping, modules: Sequence[str]) -> dict:
    # Through JSON and back, so that a stamp compares equal to one read from disk (tuples become lists).
    return json.loads(json.dumps({"settings": dict(settings), "sources": source_digests(modules)}))


def write_stamp(directory: Path, stamp: dict) -> None:
    (Path(directory) / STAMP_FILE).write_text(json.dumps(stamp, indent=1, sort_keys=True) + "\n", encoding="utf-8")


def differences(found: dict, wanted: dict) -> list[str]:
    """What differs between two stamps, one line each: settings by key (value there, value now), sources by module."""
    found_settings, found_sources = found.get("settings"), found.get("sources")
    if not isinstance(found_settings, dict) or not isinstance(found_sources, dict):
        return ["its stamp has no settings or no sources"]
    lines = []
    for key in sorted(set(found_settings) | set(wanted["settings"])):
        there, now = found_settings.get(key, "<unset>"), wanted["settings"].get(key, "<unset>")
        if there != now:
            lines.append(f"setting {key}: {there!r} there, {now!r} now")
    for module, digest in wanted["sources"].items():
        there = found_sources.get(module)
        if there != digest:
            lines.append(
                f"source of {module} changed since it was made (sha256 {str(there)[:12]} there, {digest[:12]} now)"
            )
    return lines


def reusable(directory: Path, wanted: dict, what: str, required: Sequence[str] = ()) -> bool:
    """True when ``directory`` holds ``what`` made exactly as ``wanted`` says, with each of the ``required`` files;
    False when it does not exist.

    Raises StaleOutput, naming each difference and the way out, when it exists but was made otherwise, by a tree
    that wrote no stamp, or not to the end.
    """
    directory = Path(directory)
    if not directory.exists():
        return False
    remedy = f"remove {directory} and everything made from it, or start from a fresh WORK_DIR"
    stamp_path = directory / STAMP_FILE
    try:
        found = json.loads(stamp_path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise StaleOutput(
            f"{directory} has no {STAMP_FILE}: {what} made by an older tree, by hand, or not to the end, so what "
            f"it was made with is unknown; {remedy}"
        ) from None
    except (OSError, ValueError) as error:
        raise StaleOutput(f"{stamp_path} is unreadable ({error}); {remedy}") from None
    lines = differences(found, wanted) if isinstance(found, dict) else ["its stamp is not a JSON object"]
    lines += [f"{name} is missing" for name in required if not (directory / name).exists()]
    if lines:
        listed = "".join(f"\n  - {line}" for line in lines)
        raise StaleOutput(f"{directory} holds {what} made otherwise than asked now:{listed}\n{remedy}")
    return True
