"""Find the final answer in a model response: the last ``\\boxed{...}``, else the last ``<answer>...</answer>``.

Model text is hostile: a single linear pass over the braces, so a response full of unclosed ``\\boxed{``
or 10k levels of nesting costs the same as an ordinary one.
"""

import re

# Escaped braces are LaTeX set delimiters, not groups; they are matched first so they are skipped.
_BRACE_TOKEN = re.compile(r"\\boxed\s*\{|\\fbox\s*\{|\\[{}]|[{}]")
_MAX_UNWRAP = 3  # \\boxed{\\boxed{x}} is unwrapped a few times; deeper towers are junk, not answers


def _last_box_span(text: str) -> tuple[int, int, int] | None:
    """(command start, content start, content end) of the box that closes last."""
    open_groups: list[tuple[int, int]] = []  # (command start or -1 for a plain brace, content start)
    found = None
    for token in _BRACE_TOKEN.finditer(text):
        kind = token.group()
        if kind == "}":
            if open_groups:
                command_start, content_start = open_groups.pop()
                if command_start >= 0:
                    found = (command_start, content_start, token.start())
        elif kind == "{":
            open_groups.append((-1, token.end()))
        elif len(kind) == 2:
            continue  # \\{ or \\}
        else:
            open_groups.append((token.start(), token.end()))
    return found


def last_boxed(text: str) -> str | None:
    """Content of the ``\\boxed{}`` (or ``\\fbox{}``) that closes last, or None when none is complete.

    "Closes last" makes ``\\boxed{a \\boxed{b}}`` give the outer content, and a trailing unclosed
    ``\\boxed{`` (a truncated response) leaves an earlier complete answer in place.
    """
    if "\\boxed" not in text and "\\fbox" not in text:
        return None
    span = _last_box_span(text)
    if span is None:
        return None
    content = text[span[1] : span[2]].strip()
    for _ in range(_MAX_UNWRAP):
        inner = _last_box_span(content) if content.startswith(("\\boxed", "\\fbox")) else None
        if inner is None or inner[0] != 0 or inner[2] != len(content) - 1:
            break
        content = content[inner[1] : inner[2]].strip()
    return content


def last_answer_tag(text: str) -> str | None:
    """Content of the last complete ``<answer>...</answer>`` pair, or None.

    Found from the last closing tag back to its opening tag, so a trailing unclosed ``<answer>`` (a truncated
    response) leaves an earlier complete answer in place, as a trailing unclosed ``\\boxed{`` does.
    """
    end = text.rfind("</answer>")
    if end < 0:
        return None
    start = text.rfind("<answer>", 0, end)
    if start < 0:
        return None
    content = text[start + len("<answer>") : end].strip()
    return content or None


def extract_answer(text: str) -> str | None:
    """The final answer of a response: the last complete ``\\boxed{}``, else the last ``<answer>`` tag."""
    if not isinstance(text, str):
        return None
    boxed = last_boxed(text)
    if boxed:
        return boxed
    return last_answer_tag(text)
