"""The passages of policy sections that answer a question: a service answer quotes them.

A section is split into passages (sentences, and list items whole: "**Expedited
shipping**: 2 business days, $12.99." stays one; a table row is one passage with its
column names, "Category: Kitchen appliances; Products: coffee makers, ...; Warranty: 2
years", so a question about one product type is answered by its row), markup removed.
`best_passages` ranks the passages of the sections retrieval found by how close each is to
the question (cosine of the embedder's vectors; passage vectors are cached like product
vectors), so the answer is the store's own words, never a paraphrase that could change a
fee or a deadline.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, replace

import numpy as np

from retrieval.embeddings import Embedder
from retrieval.policies import PolicyDoc

_MARKUP = re.compile(r"\*\*|__|`|^#+\s*", re.M)
_ITEM = re.compile(r"^\s*(?:[-*+]|\d+[.)])\s+")
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=[A-Z0-9\"'(])")
_TABLE_RULE = re.compile(r"^\|?[\s:|-]+\|?$")  # | --- | :---: |
MIN_PASSAGE_CHARS = 4


@dataclass(frozen=True)
class Passage:
    doc: PolicyDoc
    text: str
    position: int  # its place in the section, to quote passages in the store's order
    block: int  # the paragraph or list it belongs to
    is_item: bool = False  # a list item: a list is best quoted whole
    score: float = 0.0


def passages(doc: PolicyDoc) -> list[Passage]:
    """A section's sentences and list items, markup removed, in order.

    >>> doc = PolicyDoc("s#d", "s", "Shipping", "Costs",
    ...     "Times count from shipping. Costs:\\n\\n- **Standard**: 3-5 days, $5.99.\\n- Next day.")
    >>> [(p.text, p.block, p.is_item) for p in passages(doc)]
    [('Times count from shipping.', 0, False), ('Standard: 3-5 days, $5.99.', 1, True), \
('Next day.', 1, True)]
    >>> table = PolicyDoc("w#p", "w", "Warranty", "Periods",
    ...     "| Type | Warranty |\\n| --- | --- |\\n| Kettles | 2 years |\\n| Toys | 90 days |")
    >>> [(p.text, p.is_item) for p in passages(table)]
    [('Type: Kettles; Warranty: 2 years', True), ('Type: Toys; Warranty: 90 days', True)]
    """
    found: list[tuple[str, int, bool]] = []
    paragraph: list[str] = []
    item: list[str] = []
    header: list[str] = []  # the column names of the table being read
    block = 0

    def close(next_block: bool) -> None:
        nonlocal block
        if paragraph:
            text = " ".join(" ".join(paragraph).split())
            found.extend((s, block, False) for s in _SENTENCE_END.split(text) if s)
            paragraph.clear()
        if item:
            found.append((" ".join(" ".join(item).split()), block, True))
            item.clear()
        if next_block:
            block += 1

    for raw in _MARKUP.sub("", doc.text).splitlines():
        line = raw.strip()
        if line.startswith("|"):
            cells = [cell.strip() for cell in line.strip("|").split("|")]
            if not header:
                close(next_block=bool(paragraph or item))
                header = cells
            elif not _TABLE_RULE.match(line):
                pairs = zip(header, cells, strict=False)
                found.append(("; ".join(f"{name}: {cell}" for name, cell in pairs), block, True))
            continue
        if header:  # the line after a table
            header = []
            block += 1
        if _ITEM.match(raw):
            close(next_block=bool(paragraph))
            item.append(_ITEM.sub("", raw).strip())
        elif not line:
            close(next_block=True)
        elif item and raw.startswith((" ", "\t")):
            item.append(line)  # a list item's wrapped line
        else:
            if item:  # a paragraph after a list
                close(next_block=True)
            paragraph.append(line)
    close(next_block=False)
    kept = [
        (text, group, is_item)
        for text, group, is_item in found
        if len(text) >= MIN_PASSAGE_CHARS and not text.endswith(":")  # "Costs:" alone says nothing
    ]
    return [Passage(doc, text, n, group, is_item) for n, (text, group, is_item) in enumerate(kept)]


def best_passages(embedder: Embedder, question: str, docs: Sequence[PolicyDoc]) -> list[Passage]:
    """Every passage of `docs`, scored by closeness to `question`, best first."""
    candidates = [passage for doc in docs for passage in passages(doc)]
    if not candidates:
        return []
    vectors = embedder.embed_documents([f"{p.doc.section}: {p.text}" for p in candidates])
    scores = vectors @ np.asarray(embedder.embed_query(question), dtype=np.float32)
    scored = [replace(p, score=float(score)) for p, score in zip(candidates, scores, strict=True)]
    return sorted(scored, key=lambda p: -p.score)
