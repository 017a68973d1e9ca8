"""Turning a shopper's words into a full-text query.

Shoppers type "runing shoes for my hubby pls". The keyword index (SQLite FTS5, porter
stemming) needs the useful words only, OR-ed so one missing word does not empty the result,
and misspelt words mapped to words the catalog actually contains. Spelling correction uses
single-edit deletes over the index vocabulary (the SymSpell idea): cheap to build, exact for
one typo (a missing, extra, wrong or swapped letter).
"""

from __future__ import annotations

import re
from collections.abc import Iterable

_WORD = re.compile(r"[a-z0-9]+(?:'[a-z]+)?")

STOPWORDS = frozenset(
    [
        "a",
        "an",
        "and",
        "any",
        "are",
        "as",
        "at",
        "be",
        "but",
        "by",
        "can",
        "could",
        "do",
        "does",
        "for",
        "from",
        "get",
        "give",
        "got",
        "have",
        "i",
        "i'd",
        "i'm",
        "im",
        "in",
        "is",
        "it",
        "its",
        "looking",
        "me",
        "my",
        "need",
        "needs",
        "of",
        "on",
        "or",
        "our",
        "please",
        "pls",
        "show",
        "some",
        "something",
        "that",
        "the",
        "this",
        "to",
        "want",
        "wants",
        "with",
        "would",
        "you",
        "your",
        "find",
        "buy",
        "one",
        "ones",
        "which",
        "what",
        "who",
        "whose",
        "good",
        "nice",
        "new",
        "best",
        "under",
        "over",
        "below",
        "above",
        "less",
        "more",
        "than",
        "between",
        "cheap",
        "cheaper",
        "around",
        "about",
        "up",
        "usd",
        "dollars",
        "dollar",
        "bucks",
        "price",
        "priced",
    ]
)

MIN_CORRECTABLE = 4


def query_words(text: str) -> list[str]:
    """Lower-cased content words of `text`, stopwords and bare numbers removed."""
    words = _WORD.findall(text.lower())
    return [w for w in words if w not in STOPWORDS and not w.isdigit()]


def _deletes(word: str) -> set[str]:
    return {word[:i] + word[i + 1 :] for i in range(len(word))}


class SpellingIndex:
    """Maps a misspelt word to the most frequent vocabulary word one edit away."""

    def __init__(self, vocabulary: Iterable[tuple[str, int]]) -> None:
        self._counts: dict[str, int] = {}
        self._by_delete: dict[str, list[str]] = {}
        for word, count in vocabulary:
            if not word.isalpha():
                continue
            self._counts[word] = count
            if len(word) >= MIN_CORRECTABLE - 1:
                for key in _deletes(word) | {word}:
                    self._by_delete.setdefault(key, []).append(word)

    def __contains__(self, word: str) -> bool:
        return word in self._counts

    def correct(self, word: str) -> str | None:
        """The best vocabulary word within one edit of `word`, or None."""
        if word in self._counts or len(word) < MIN_CORRECTABLE or not word.isalpha():
            return None
        candidates: set[str] = set(self._by_delete.get(word, ()))
        for key in _deletes(word):
            candidates.update(self._by_delete.get(key, ()))
            if key in self._counts:
                candidates.add(key)
        if not candidates:
            return None
        return max(sorted(candidates), key=lambda w: self._counts.get(w, 0))


def fts_match_expression(words: Iterable[str]) -> str:
    """An FTS5 MATCH expression OR-ing the words as quoted terms."""
    unique = list(dict.fromkeys(words))
    return " OR ".join(f'"{w}"' for w in unique)
