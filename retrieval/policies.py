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

A section may list the questions shoppers ask that it answers, one per line, in an HTML
comment (hidden where the markdown is published), as help desks keep an FAQ beside each
article; retrieval matches a message against them as well as against the section's text:

    ## Gift returns

    <!-- questions
    can i return a present without the receipt
    will my aunt find out if i send her gift back
    -->

Every other HTML comment is an operator's note: it is never part of a section's text, so the
bot never quotes it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

DEMO_POLICIES_DIR = Path(__file__).parent / "demo" / "policies"

_FENCE = re.compile(r"^\s*(```|~~~)")
_COMMENT_START = re.compile(r"^\s*<!--")
_QUESTIONS = re.compile(r"^\s*<!--\s*questions\b:?", re.I)
_INLINE_COMMENT = re.compile(r"<!--.*?-->", re.S)


@dataclass(frozen=True)
class PolicyDoc:
    """One section of a policy document: id "returns#return-window", doc "returns"."""

    id: str
    doc: str
    title: str
    section: str
    text: str
    questions: tuple[str, ...] = ()  # what shoppers ask that it answers (see above)

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
    sections: list[tuple[str, list[str], list[str]]] = [("Overview", [], [])]
    in_fence = False
    comment: list[str] | None = None  # the lines of the HTML comment being read
    for line in markdown.splitlines():
        if comment is not None:
            comment.append(line)
            if "-->" in line:
                sections[-1][2].extend(_questions(comment))
                comment = None
            continue
        if _FENCE.match(line):
            in_fence = not in_fence
        elif not in_fence and _COMMENT_START.match(line):
            if "-->" in line:
                sections[-1][2].extend(_questions([line]))
            else:
                comment = [line]
            continue
        elif not in_fence and line.startswith("## "):
            sections.append((line[3:].strip(), [], []))
            continue
        elif not in_fence and line.startswith("# ") and sections[-1][0] == "Overview":
            title = line[2:].strip()
            continue
        sections[-1][1].append(line)

    docs: list[PolicyDoc] = []
    used: dict[str, int] = {}
    for heading, lines, questions in sections:
        text = _INLINE_COMMENT.sub("", "\n".join(lines)).strip()
        if not text:
            continue
        slug = _slug(heading) or "section"
        used[slug] = used.get(slug, 0) + 1
        if used[slug] > 1:
            slug = f"{slug}-{used[slug]}"
        docs.append(
            PolicyDoc(
                id=f"{doc}#{slug}",
                doc=doc,
                title=title,
                section=heading,
                text=text,
                questions=tuple(dict.fromkeys(questions)),
            )
        )
    return docs


def _questions(comment: list[str]) -> list[str]:
    """The questions of a `<!-- questions ... -->` comment (none from any other comment)."""
    if not _QUESTIONS.match(comment[0]):
        return []
    lines = [_QUESTIONS.sub("", comment[0])] + comment[1:]
    lines[-1] = lines[-1].split("-->")[0]
    return [" ".join(line.split()) for line in lines if line.strip()]


def _slug(heading: str) -> str:
    """Heading to id part: "Return window" -> "return-window", "We don't" -> "we-dont"."""
    text = re.sub(r"['\u2019]", "", heading.lower())
    return re.sub(r"[^a-z0-9]+", "-", text).strip("-")
