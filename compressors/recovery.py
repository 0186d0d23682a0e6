"""Subsequence recovery (placeholder)."""


def recover(original_prompt: str, compressed_prompt: str, response: str) -> str:
    return response
