"""Exact, fast ROUGE-L near-duplicate filtering (the Self-Instruct "ROUGE-L > 0.7" rule).

Decisions are identical to scoring every new text against every kept text with ``rouge-score``'s
``RougeScorer(['rougeL'])``; only the work differs:

1. Texts become lists of int token ids. Tokenisation matches rouge-score's default on ASCII text
   (lowercase, non-alphanumeric -> space, whitespace split, no stemming). Letters outside ASCII are
   kept as word characters, and Chinese/Japanese/Korean characters are one token each: rouge-score
   drops all non-ASCII text, which would silently switch dedup off for Chinese.
2. LCS lengths come from the bit-parallel algorithm of Allison-Dix / Hyyro: a kept text of m <= 64
   tokens is one uint64 (a 1 bit per position not yet on the LCS frontier); each query token advances
   it with one add, one subtract and three masks. numpy advances *all* kept texts at once, and for
   each query token it touches only the kept texts that contain that token (an inverted index of
   position masks), so a query costs the total length of its tokens' postings, not a DP table per pair.
3. Longer texts (> 64 tokens) take the same algorithm over Python big ints, pair by pair, after a
   length bound that rules out pairs whose perfect LCS could not reach the threshold.
4. The F-measure is computed with exactly rouge-score's floating-point expression, so ties at the
   threshold fall the same way.
"""

from __future__ import annotations

import bisect
import re
from collections.abc import Iterable, Sequence

import numpy as np

# Han (incl. extension A, compatibility, extension B+), kana, Hangul syllables and jamo.
_CJK = (r"\u1100-\u11ff\u3040-\u30ff\u31f0-\u31ff\u3400-\u4dbf\u4e00-\u9fff\uac00-\ud7af"
        r"\uf900-\ufaff\U00020000-\U0002fa1f")
_CJK_RE = re.compile(f"[{_CJK}]")
_WORD_RE = re.compile(r"[^\W_]+")  # letters and digits of any script, no underscore


def has_cjk(text: str) -> bool:
    """Whether the text contains Chinese, Japanese or Korean characters (written without spaces)."""
    return _CJK_RE.search(text) is not None


def tokenize(text: str) -> list[str]:
    """rouge-score's default tokens for ASCII text; CJK characters become one token each."""
    text = text.lower()
    if has_cjk(text):
        text = _CJK_RE.sub(r" \g<0> ", text)
    return _WORD_RE.findall(text)


def rouge_l_f(lcs: int, target_len: int, prediction_len: int) -> float:
    """rouge-score's F-measure from an LCS length, with the same float operations (so the same ties)."""
    if target_len == 0 or prediction_len == 0:
        return 0.0
    precision = lcs / prediction_len
    recall = lcs / target_len
    if precision + recall > 0:
        return 2 * precision * recall / (precision + recall)
    return 0.0


def lcs_length(a: Sequence[object], b: Sequence[object]) -> int:
    """Longest common subsequence length, bit-parallel over ``a`` (any hashable tokens)."""
    if not a or not b:
        return 0
    masks: dict[object, int] = {}
    for i, tok in enumerate(a):
        masks[tok] = masks.get(tok, 0) | (1 << i)
    return _lcs_bits(masks, len(a), b)


def _lcs_bits(masks: dict, m: int, b: Iterable[object]) -> int:
    # V holds a 1 for every position of ``a`` not yet matched on the current LCS frontier;
    # each token of b advances it with one add (carries = chains of matches) and a few masks.
    full = (1 << m) - 1
    v = full
    get = masks.get
    for tok in b:
        u = v & get(tok, 0)
        if u:
            v = ((v + u) | (v - u)) & full
    return m - v.bit_count()


def rouge_l(a: str, b: str) -> float:
    """ROUGE-L F between two texts (symmetric)."""
    ta, tb = tokenize(a), tokenize(b)
    return rouge_l_f(lcs_length(ta, tb), len(ta), len(tb))


class _Postings:
    """Growable arrays (kept-text index, bit mask of the token's positions in that text) for one token."""

    __slots__ = ("idx", "mask", "size")

    def __init__(self) -> None:
        self.idx = np.empty(4, dtype=np.int64)
        self.mask = np.empty(4, dtype=np.uint64)
        self.size = 0

    def append(self, i: int, mask: int) -> None:
        if self.size == len(self.idx):
            self.idx = np.resize(self.idx, 2 * self.size)
            self.mask = np.resize(self.mask, 2 * self.size)
        self.idx[self.size] = i
        self.mask[self.size] = mask
        self.size += 1


class DedupIndex:
    """Texts kept so far; ``add`` keeps a text unless it scores ROUGE-L F > threshold against one of them.

    Texts of up to 64 tokens (nearly every instruction) live in numpy arrays: each kept text is one
    uint64 bit-vector, and a query advances the bit-parallel LCS of *all* kept texts at once, touching
    for each of its tokens only the kept texts that contain that token. Longer texts fall back to
    Python big ints, one pair at a time.
    """

    def __init__(self, threshold: float = 0.7) -> None:
        if not 0.0 <= threshold <= 1.0:
            raise ValueError("threshold must be between 0 and 1")
        self.threshold = threshold
        self.vocab: dict[str, int] = {}
        self._len = np.empty(1024, dtype=np.int64)
        self._full = np.empty(1024, dtype=np.uint64)
        self._n = 0  # kept texts in the numpy arrays
        self._ids: list[int] = []  # global kept index of each numpy slot
        self._postings: dict[int, _Postings] = {}
        self._long: list[tuple[int, int, dict[int, int]]] = []  # (global index, length, masks)
        self._count = 0

    def ids(self, text: str) -> list[int]:
        vocab = self.vocab
        out = []
        for tok in tokenize(text):
            tid = vocab.get(tok)
            if tid is None:
                tid = vocab[tok] = len(vocab)
            out.append(tid)
        return out

    def best_match(self, text: str | list[int], upto: int | None = None) -> tuple[float, int | None]:
        """Highest ROUGE-L F above the threshold against kept texts and that text's index, else (0.0, None).

        ``upto``: only the first ``upto`` texts kept count (the index as it was then), so a caller can
        ask a question whose answer must not depend on texts added since.
        """
        ids = self.ids(text) if isinstance(text, str) else text
        n = len(ids)
        if n == 0:
            return 0.0, None  # rouge-score scores empty token lists 0
        thr = self.threshold
        best, best_i = 0.0, None
        k = self._n if upto is None else bisect.bisect_left(self._ids, upto)
        if k:
            v = self._full[:k].copy()
            full = self._full
            for t in ids:
                p = self._postings.get(t)
                if p is None:
                    continue
                size = p.size if k == self._n else int(np.searchsorted(p.idx[: p.size], k))  # slots ascend
                sub = p.idx[:size]
                vs = v[sub]
                u = vs & p.mask[:size]
                v[sub] = ((vs + u) | (vs - u)) & full[sub]
            lengths = self._len[:k]
            lcs = lengths - np.bitwise_count(v).astype(np.int64)
            # Same float expression as rouge-score, vectorised; re-checked one by one below.
            with np.errstate(divide="ignore", invalid="ignore"):
                prec = lcs / n
                rec = lcs / lengths
                f = 2 * prec * rec / (prec + rec)
            for j in np.flatnonzero(f > thr - 1e-9):
                fj = rouge_l_f(int(lcs[j]), int(lengths[j]), n)
                if fj > thr and fj > best:
                    best, best_i = fj, self._ids[j]
        if self._long:
            for gi, m, masks in self._long:
                if upto is not None and gi >= upto:
                    continue
                if rouge_l_f(min(m, n), m, n) <= thr:  # even a perfect LCS would not reach it
                    continue
                f = rouge_l_f(_lcs_bits(masks, m, ids), m, n)
                if f > thr and f > best:
                    best, best_i = f, gi
        return best, best_i

    def is_duplicate(self, text: str | list[int], upto: int | None = None) -> bool:
        return self.best_match(text, upto)[1] is not None

    def force_add(self, text: str | list[int]) -> int:
        """Index a text without checking it (seed tasks, records kept by an earlier run)."""
        ids = self.ids(text) if isinstance(text, str) else text
        gi = self._count
        self._count += 1
        masks: dict[int, int] = {}
        for pos, t in enumerate(ids):
            masks[t] = masks.get(t, 0) | (1 << pos)
        m = len(ids)
        if m == 0:
            return gi  # scores 0 against everything: nothing to index
        if m > 64:
            self._long.append((gi, m, masks))
            return gi
        slot = self._n
        if slot == len(self._len):
            self._len = np.resize(self._len, 2 * slot)
            self._full = np.resize(self._full, 2 * slot)
        self._len[slot] = m
        self._full[slot] = (1 << m) - 1  # uint64 arithmetic wraps: the carry out of bit 63 is dropped
        self._ids.append(gi)
        self._n += 1
        for t, mask in masks.items():
            p = self._postings.get(t)
            if p is None:
                p = self._postings[t] = _Postings()
            p.append(slot, mask)
        return gi

    def add(self, text: str | list[int]) -> bool:
        """Keep ``text`` (and return True) unless it scores F > threshold against a kept text."""
        ids = self.ids(text) if isinstance(text, str) else text
        if self.best_match(ids)[1] is not None:
            return False
        self.force_add(ids)
        return True

    def __len__(self) -> int:
        return self._count


def dedup_texts(texts: Sequence[str], threshold: float = 0.7, preloaded: Sequence[str] = ()) -> list[bool]:
    """Keep/drop decision for each text, in order, against ``preloaded`` texts and earlier keeps."""
    index = DedupIndex(threshold)
    for t in preloaded:
        index.force_add(t)
    return [index.add(t) for t in texts]
