"""terse prompt compression as a LlamaIndex node postprocessor."""

from llama_index.postprocessor.terse.base import TerseNodePostprocessor
from llama_index.postprocessor.terse.events import TerseCompressionEvent, TerseCompressionFailedEvent

__all__ = ["TerseCompressionEvent", "TerseCompressionFailedEvent", "TerseNodePostprocessor"]
