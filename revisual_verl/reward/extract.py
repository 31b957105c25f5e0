"""Find the final answer in a model response: its last ``\\boxed{...}`` (with the boxes that answer the same
question together with it), else the last ``<answer>...</answer>``.

Several boxes form one answer the way math-verify's own extraction reads a response: going back from the last
box, an earlier box joins the answer while the text between the two is short (under 10 characters), or
is under 70 characters, holds a separator (``and``, ``or``, a comma or a semicolon) and the two boxes differ.
Repeated boxes count once. The parts are joined with commas, which math-verify reads as a set, so
``\\boxed{1} and \\boxed{2}`` is the answer ``1,2``. Two boxes in different math environments (``$...$``,
``\\(...\\)``, ``\\[...\\]``) join only when the environments are chained by a separator alone
(``$\\boxed{1}$ and $\\boxed{2}$``), as math-verify's environment pattern requires, where that pattern is what
math-verify reads the answer with (no ``}`` after the final box's environment).

Model text is hostile: one linear pass over the braces finds every box, and the walk back over the boxes
reads each gap between two of them once, so 50k unclosed ``\\boxed{``, 10k levels of nesting or 50k boxes
in a row cost the same as an ordinary response per character.
"""

import bisect
import re
from typing import NamedTuple

# Escaped braces are LaTeX set delimiters, not groups; they are matched first so they are skipped.
_BRACE_TOKEN = re.compile(r"\\boxed\s*\{|\\fbox\s*\{|\\[{}]|[{}]")
_MAX_UNWRAP = 3  # \\boxed{\\boxed{x}} is unwrapped a few times; deeper towers are junk, not answers
# math-verify (latex2sympy2_extended's extract_boxed_content) joins an earlier box when the text between is
# shorter than this...
_CLOSE_GAP = 10
# ...or shorter than this, holds one of these separators, and the two boxes differ.
_SEPARATED_GAP = 70
_SEPARATOR = re.compile(r"\b(?:and|or)\b|[,;]")
_MATH_DELIMITER = re.compile(r"\$|\\[()\[\]]")
_CLOSING_DELIMITER = re.compile(r"\$|\\[)\]]")
# Two math environments chained as math-verify's pattern allows: the rest of the first one, its closing
# delimiter, a separator, the next one's opening delimiter and what precedes the box in it. Only applied to
# gaps under _SEPARATED_GAP characters, so its cost is bounded whatever the response holds.
_ENV_CHAIN = re.compile(r"[^$]*?(?:\$\$?|\\[)\]])\s*(?:,?and|,?or|,)\s*(?:\$\$?|\\[(\[])[^$]*")


class BoxSpan(NamedTuple):
    command_start: int
    content_start: int
    content_end: int


def box_spans(text: str) -> list[BoxSpan]:
    """Every complete ``\\boxed{}``/``\\fbox{}``, in the order their closing braces appear."""
    open_groups: list[tuple[int, int]] = []  # (command start or -1 for a plain brace, content start)
    found: list[BoxSpan] = []
    for token in _BRACE_TOKEN.finditer(text):
        kind = token.group()
        if kind == "}":
            if open_groups:
                command_start, content_start = open_groups.pop()
                if command_start >= 0:
                    found.append(BoxSpan(command_start, content_start, token.start()))
        elif kind == "{":
            open_groups.append((-1, token.end()))
        elif len(kind) == 2:
            continue  # \\{ or \\}
        else:
            open_groups.append((token.start(), token.end()))
    return found


def _unwrapped(content: str) -> str:
    """``\\boxed{\\boxed{x}}`` -> ``x``, a few levels deep."""
    for _ in range(_MAX_UNWRAP):
        if not content.startswith(("\\boxed", "\\fbox")):
            break
        inner = box_spans(content)
        if not inner or inner[-1].command_start != 0 or inner[-1].content_end != len(content) - 1:
            break
        content = content[inner[-1].content_start : inner[-1].content_end].strip()
    return content


def _has_box_command(text: str) -> bool:
    return "\\boxed" in text or "\\fbox" in text


def last_boxed(text: str) -> str | None:
    """Content of the ``\\boxed{}`` (or ``\\fbox{}``) that closes last, or None when none is complete.

    "Closes last" makes ``\\boxed{a \\boxed{b}}`` give the outer content, and a trailing unclosed
    ``\\boxed{`` (a truncated response) leaves an earlier complete answer in place.
    """
    if not _has_box_command(text):
        return None
    spans = box_spans(text)
    if not spans:
        return None
    return _unwrapped(text[spans[-1].content_start : spans[-1].content_end].strip())


def _env_rule_applies(text: str, answer_end: int) -> bool:
    """Whether math-verify reads the final answer through its math-environment pattern.

    That pattern's match ends at the delimiter that closes the final box's environment; math-verify tries the
    match that ends last first, and its plain ``\\boxed{.+}`` match ends at the last ``}`` of the response. So the
    environment rule decides when a delimiter follows the final box and no ``}`` follows that delimiter.
    """
    delimiter = _CLOSING_DELIMITER.search(text, answer_end)
    return delimiter is not None and text.find("}", delimiter.end()) < 0


def _joins(gap: str, earlier: str, later: str, env_rule: bool) -> bool:
    """Whether a box whose content is ``earlier`` belongs to the same answer as the next one, ``gap`` apart."""
    if len(gap) >= _SEPARATED_GAP or _has_box_command(gap):
        return False
    if env_rule and _MATH_DELIMITER.search(gap) and not _ENV_CHAIN.fullmatch(gap):
        return False
    return len(gap) < _CLOSE_GAP or (earlier != later and _SEPARATOR.search(gap) is not None)


def final_boxed_parts(text: str) -> list[str]:
    """The contents of the boxes that make up the final answer, in reading order ([] when there is none).

    The final box is the one that closes last. Going back from it, the next box considered is the one whose
    command starts last before it (an inner box of an earlier one, as math-verify's backward search finds);
    a box that encloses the current one, an unclosed box in between or a gap that fails the rule ends the
    answer.
    """
    if not _has_box_command(text):
        return []
    spans = box_spans(text)
    if not spans:
        return []
    last = spans[-1]
    parts = [_unwrapped(text[last.content_start : last.content_end].strip())]
    if not parts[0]:
        return []
    env_rule = _env_rule_applies(text, last.content_end + 1)
    by_start = sorted(spans)
    index = bisect.bisect_left(by_start, (last.command_start,)) - 1
    start = last.command_start
    while index >= 0:
        span = by_start[index]
        index -= 1
        if span.content_end > start:
            break  # it encloses the current box: math-verify finds no closing brace before the current box
        if start - span.content_end - 1 >= _SEPARATED_GAP:
            break
        content = text[span.content_start : span.content_end].strip()
        if not _joins(text[span.content_end + 1 : start], content, parts[-1], env_rule):
            break
        if content != parts[-1]:
            parts.append(content)
        start = span.command_start
    parts.reverse()
    return parts


def final_boxed(text: str) -> str | None:
    """The boxed final answer: one box's content, or several boxes' contents joined by commas; None if none."""
    parts = final_boxed_parts(text)
    return ",".join(parts) if parts else None


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
    """The final answer of a response: its final boxed answer (see :func:`final_boxed`), else the last
    ``<answer>`` tag."""
    if not isinstance(text, str):
        return None
    boxed = final_boxed(text)
    if boxed:
        return boxed
    return last_answer_tag(text)
