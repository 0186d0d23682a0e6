"""terse prompt compression as a LlamaIndex node postprocessor."""

from llama_index.postprocessor.terse.base import TerseNodePostprocessor

__all__ = ["TerseNodePostprocessor"]
