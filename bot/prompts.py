"""Prompt templates: every prompt is a pair of files in `prompts/`, NAME.system.txt and
NAME.user.txt, rendered through LangChain's ChatPromptTemplate.

Rendering fails loudly (PromptError) when a variable is missing, so a template and its
caller cannot drift apart silently. The result is a list of chat messages; the model's own
chat template turns them into text, so any instruct model can take these prompts.
"""

from __future__ import annotations

import string
import tomllib
from functools import cache
from pathlib import Path
from typing import Any

PROMPTS_DIR = Path(__file__).resolve().parent.parent / "prompts"


# LangChain's message types as chat-template roles.
CHAT_ROLES = {"system": "system", "human": "user", "ai": "assistant"}


class PromptError(RuntimeError):
    """A prompt file is missing or a variable it needs was not given."""


@cache
def chat_prompt(name: str, prompts_dir: Path = PROMPTS_DIR) -> Any:
    from langchain_core.prompts import ChatPromptTemplate

    parts = []
    for role, suffix in (("system", "system"), ("human", "user")):
        path = prompts_dir / f"{name}.{suffix}.txt"
        if not path.is_file():
            raise PromptError(f"prompt file missing: {path}")
        parts.append((role, path.read_text(encoding="utf-8").rstrip("\n")))
    return ChatPromptTemplate.from_messages(parts)


def render_messages(name: str, **values: Any) -> list[dict[str, str]]:
    """The prompt `name` filled with `values`, as [{"role": ..., "content": ...}, ...]."""
    template = chat_prompt(name)
    missing = set(template.input_variables) - set(values)
    if missing:
        raise PromptError(f"prompt {name!r} needs {sorted(missing)}, which were not given")
    return [
        {"role": CHAT_ROLES[message.type], "content": message.content}
        for message in template.format_messages(**values)
    ]


def render_chat_text(tokenizer: Any, name: str, **values: Any) -> str:
    """The prompt as the model's own chat text, ending where the assistant's turn begins."""
    messages = render_messages(name, **values)
    return tokenizer.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)


@cache
def prompt_table(name: str, prompts_dir: Path = PROMPTS_DIR) -> dict[str, Any]:
    """A TOML file of `prompts/`: canned_replies.toml (turns that need no LM), orders.toml,
    follow_ups.toml."""
    path = prompts_dir / name
    if not path.is_file():
        raise PromptError(f"prompt file missing: {path}")
    return tomllib.loads(path.read_text(encoding="utf-8"))


def render(template: str, **values: Any) -> str:
    """Fill a reply template; a variable the template names but was not given raises."""
    names = {name for _, name, _, _ in string.Formatter().parse(template) if name}
    missing = names - set(values)
    if missing:
        raise PromptError(f"reply template needs {sorted(missing)}: {template[:60]!r}")
    return template.format(**values)
