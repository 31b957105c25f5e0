"""Cold-start SFT rows: recognise alpaca, sharegpt and OpenAI-messages layouts and turn each into chat messages.

The upstream file was made for LLaMA-Factory, whose alpaca and sharegpt layouts are followed here: alpaca joins
``instruction`` and ``input`` with a newline and may carry ``system`` and ``history`` (earlier
``[query, response]`` pairs); sharegpt holds ``conversations`` (or ``messages``) of ``{"from", "value"}`` turns
and may carry ``system``. OpenAI-style rows hold ``messages`` of ``{"role", "content"}``, where content may also
be a list of text parts. The output is what verl's ``MultiTurnSFTDataset`` reads from its ``messages`` column.
"""

from __future__ import annotations

from revisual_verl.data.rejections import (
    INVALID_MESSAGES,
    NO_ASSISTANT_TURN,
    NOT_AN_OBJECT,
    UNKNOWN_LAYOUT,
    RowRejected,
    quote,
)

ALPACA = "alpaca"
SHAREGPT = "sharegpt"
MESSAGES = "messages"
LAYOUTS = (ALPACA, SHAREGPT, MESSAGES)

SHAREGPT_ROLES = {
    "human": "user",
    "user": "user",
    "gpt": "assistant",
    "assistant": "assistant",
    "model": "assistant",
    "system": "system",
}
CHAT_ROLES = ("system", "user", "assistant")


def detect_layout(row: dict) -> str:
    """The layout of one row, from its keys; rows of one file may differ, so each row is asked on its own."""
    if "conversations" in row:
        return SHAREGPT
    if "messages" in row:
        turns = row["messages"]
        first = turns[0] if isinstance(turns, list) and turns else None
        if isinstance(first, dict) and "from" in first and "role" not in first:
            return SHAREGPT
        return MESSAGES
    if "instruction" in row and "output" in row:
        return ALPACA
    raise RowRejected(UNKNOWN_LAYOUT, f"no alpaca, sharegpt or messages keys among {sorted(row)[:12]}")


def _text(value, where: str) -> str:
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    raise RowRejected(INVALID_MESSAGES, f"{where} is {type(value).__name__}, expected text")


def alpaca_to_messages(row: dict) -> list[dict]:
    messages = []
    system = _text(row.get("system"), "system")
    if system.strip():
        messages.append({"role": "system", "content": system})
    history = row.get("history") or []
    if not isinstance(history, list):
        raise RowRejected(INVALID_MESSAGES, "history is not a list of [query, response] pairs")
    for turn, pair in enumerate(history):
        if not (isinstance(pair, list | tuple) and len(pair) == 2):
            raise RowRejected(INVALID_MESSAGES, f"history[{turn}] is not a [query, response] pair")
        messages.append({"role": "user", "content": _text(pair[0], f"history[{turn}][0]")})
        messages.append({"role": "assistant", "content": _text(pair[1], f"history[{turn}][1]")})
    query = "\n".join(
        part for part in (_text(row.get("instruction"), "instruction"), _text(row.get("input"), "input")) if part
    )
    messages.append({"role": "user", "content": query})
    messages.append({"role": "assistant", "content": _text(row.get("output"), "output")})
    return messages


def sharegpt_to_messages(row: dict) -> list[dict]:
    turns = row.get("conversations", row.get("messages"))
    if not isinstance(turns, list):
        raise RowRejected(INVALID_MESSAGES, "conversations is not a list")
    messages = []
    system = _text(row.get("system"), "system")
    if system.strip():
        messages.append({"role": "system", "content": system})
    for position, turn in enumerate(turns):
        if not isinstance(turn, dict):
            raise RowRejected(INVALID_MESSAGES, f"turn {position} is not an object")
        speaker = turn.get("from")
        role = SHAREGPT_ROLES.get(speaker) if isinstance(speaker, str) else None
        if role is None:
            raise RowRejected(INVALID_MESSAGES, f"turn {position} is from {quote(speaker)}, not a chat role")
        messages.append({"role": role, "content": _text(turn.get("value"), f"turn {position} value")})
    return messages


def _content_text(content, position: int) -> str:
    if isinstance(content, list):
        texts = []
        for part in content:
            if not (isinstance(part, dict) and part.get("type") == "text"):
                kind = part.get("type") if isinstance(part, dict) else type(part).__name__
                raise RowRejected(
                    INVALID_MESSAGES, f"message {position} has a {quote(kind)} part; cold start is text only"
                )
            texts.append(_text(part.get("text"), f"message {position} text part"))
        return "".join(texts)
    return _text(content, f"message {position} content")


def openai_to_messages(row: dict) -> list[dict]:
    turns = row.get("messages")
    if not isinstance(turns, list):
        raise RowRejected(INVALID_MESSAGES, "messages is not a list")
    messages = []
    for position, turn in enumerate(turns):
        if not isinstance(turn, dict):
            raise RowRejected(INVALID_MESSAGES, f"message {position} is not an object")
        role = turn.get("role")
        if not isinstance(role, str) or role not in CHAT_ROLES:
            raise RowRejected(INVALID_MESSAGES, f"message {position} has role {quote(role)}, not one of {CHAT_ROLES}")
        messages.append({"role": role, "content": _content_text(turn.get("content"), position)})
    return messages


CONVERTERS = {ALPACA: alpaca_to_messages, SHAREGPT: sharegpt_to_messages, MESSAGES: openai_to_messages}


def check_conversation(messages: list[dict]) -> list[dict]:
    """Reject conversations an SFT step cannot learn from; drop an empty system turn."""
    if messages and messages[0]["role"] == "system" and not messages[0]["content"].strip():
        messages = messages[1:]
    for position, message in enumerate(messages):
        if message["role"] == "system" and position != 0:
            raise RowRejected(INVALID_MESSAGES, f"system message at position {position}; only the first may be")
        if not message["content"].strip():
            raise RowRejected(INVALID_MESSAGES, f"{message['role']} message at position {position} is empty")
    if not any(message["role"] == "assistant" for message in messages):
        raise RowRejected(NO_ASSISTANT_TURN, "the conversation has no assistant turn to train on")
    if not any(message["role"] == "user" for message in messages):
        raise RowRejected(INVALID_MESSAGES, "the conversation has no user turn")
    # As LLaMA-Factory requires: an assistant turn with nothing before it answers no prompt (and chat templates
    # that read the first message cannot render the empty prompt before it).
    opening = 1 if messages[0]["role"] == "system" else 0
    if messages[opening]["role"] != "user":
        raise RowRejected(INVALID_MESSAGES, "the conversation opens with an assistant turn; the user must speak first")
    return messages


def to_messages(row: object, layout: str | None = None) -> tuple[list[dict], str]:
    """Chat messages for one raw row and the layout it was read as (``layout=None`` detects it)."""
    if not isinstance(row, dict):
        raise RowRejected(NOT_AN_OBJECT, f"row is {type(row).__name__}, expected an object")
    layout = layout or detect_layout(row)
    return check_conversation(CONVERTERS[layout](row)), layout


def has_think_trace(messages: list[dict]) -> bool:
    """Whether some assistant turn closes a ``<think>`` block, as ReVisual's cold-start traces do."""
    return any(message["role"] == "assistant" and "</think>" in message["content"] for message in messages)
