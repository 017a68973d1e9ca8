"""Store policy documents (shipping, returns, refunds, ...) split into retrievable sections.

A policy folder holds markdown files, one per topic. Each file starts with `# Title` and is
cut at its `## Section` headings into one `PolicyDoc` per section, so the bot can retrieve
and quote the one section that answers a question:

    >>> docs = load_policy_docs()
    >>> doc = next(d for d in docs if d.id == "returns#return-window")
    >>> doc.title, doc.section
    ('Returns Policy', 'Return window')

Text before the first `##` heading becomes an "Overview" section. Without a directory the
Shopbot Demo Store policies shipped in `retrieval/demo/policies/` are loaded.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

DEMO_POLICIES_DIR = Path(__file__).parent / "demo" / "policies"

_FENCE = re.compile(r"^\s*(```|~~~)")


@dataclass(frozen=True)
class PolicyDoc:
    """One section of a policy document: id "returns#return-window", doc "returns"."""

    id: str
    doc: str
    title: str
    section: str
    text: str

    def content(self) -> str:
        """Title, section heading and body as one passage, for embedding and prompts."""
        return f"{self.title} - {self.section}\n{self.text}"


def load_policy_docs(directory: Path | None = None) -> list[PolicyDoc]:
    """Load every `*.md` file in `directory` (sorted by name) as one PolicyDoc per section.

    Sections with no text are skipped. Raises FileNotFoundError if the folder is missing.
    """
    folder = Path(directory) if directory is not None else DEMO_POLICIES_DIR
    if not folder.is_dir():
        raise FileNotFoundError(f"policy folder {str(folder)!r} does not exist")
    docs: list[PolicyDoc] = []
    for path in sorted(folder.glob("*.md")):
        docs.extend(split_policy(path.stem, path.read_text(encoding="utf-8")))
    return docs


def split_policy(doc: str, markdown: str) -> list[PolicyDoc]:
    """Cut one markdown document at its `##` headings; `#` gives the title (default: doc)."""
    title = doc.replace("-", " ").replace("_", " ").title()
    sections: list[tuple[str, list[str]]] = [("Overview", [])]
    in_fence = False
    for line in markdown.splitlines():
        if _FENCE.match(line):
            in_fence = not in_fence
        elif not in_fence and line.startswith("## "):
            sections.append((line[3:].strip(), []))
            continue
        elif not in_fence and line.startswith("# ") and sections[-1][0] == "Overview":
            title = line[2:].strip()
            continue
        sections[-1][1].append(line)

    docs: list[PolicyDoc] = []
    used: dict[str, int] = {}
    for heading, lines in sections:
        text = "\n".join(lines).strip()
        if not text:
            continue
        slug = _slug(heading) or "section"
        used[slug] = used.get(slug, 0) + 1
        if used[slug] > 1:
            slug = f"{slug}-{used[slug]}"
        docs.append(PolicyDoc(id=f"{doc}#{slug}", doc=doc, title=title, section=heading, text=text))
    return docs


def _slug(heading: str) -> str:
    """Heading to id part: "Return window" -> "return-window", "We don't" -> "we-dont"."""
    text = re.sub(r"['\u2019]", "", heading.lower())
    return re.sub(r"[^a-z0-9]+", "-", text).strip("-")
