"""A whitespace tokenizer with the two methods the bench uses: no model, no download."""

import re

_PIECE = re.compile(r"\s*\S+|\s+")


class WhitespaceTokenizer:
    def __init__(self):
        self.vocab: dict[str, int] = {}
        self.inverse: dict[int, str] = {}

    def encode(self, text: str, add_special_tokens: bool = False) -> list[int]:
        ids = []
        for piece in _PIECE.findall(text):
            if piece not in self.vocab:
                self.vocab[piece] = len(self.vocab)
                self.inverse[self.vocab[piece]] = piece
            ids.append(self.vocab[piece])
        return ids

    def decode(self, ids) -> str:
        return "".join(self.inverse[i] for i in ids)
