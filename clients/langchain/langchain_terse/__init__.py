"""terse prompt compression as a LangChain document compressor."""

from langchain_terse.compressor import TerseDocumentCompressor

__all__ = ["TerseDocumentCompressor"]
