"""Typed Python client for the terse prompt-compression service (no torch, no transformers).

from terse_client import TerseClient

with TerseClient("http://localhost:8000") as terse:
    out = terse.compress(["doc one ...", "doc two ..."], question="What ...?", rate=0.5)
    print(out.compressed_prompt, out.ratio)
"""

from ._base import DEFAULT_BASE_URL, RETRY_STATUSES, __version__, parse_retry_after
from .client import AsyncTerseClient, TerseClient
from .errors import (
    APIStatusError,
    AuthenticationError,
    BadRequestError,
    PayloadTooLargeError,
    RateLimitError,
    ServerError,
    ServiceUnavailableError,
    TerseConnectionError,
    TerseError,
    TerseResponseError,
    TerseTimeoutError,
)
from .models import (
    Answer,
    CompressRequest,
    CompressResponse,
    ContextResult,
    ErrorDetail,
    ErrorResponse,
    HealthResponse,
    InfoResponse,
    Limits,
    Method,
    ProtectedRange,
    Ranker,
    RecoverRequest,
    RecoverResponse,
    Reorder,
    WordLabel,
)

__all__ = [
    "DEFAULT_BASE_URL",
    "Answer",
    "RETRY_STATUSES",
    "APIStatusError",
    "AsyncTerseClient",
    "AuthenticationError",
    "BadRequestError",
    "CompressRequest",
    "CompressResponse",
    "ContextResult",
    "ErrorDetail",
    "ErrorResponse",
    "HealthResponse",
    "InfoResponse",
    "Limits",
    "Method",
    "ProtectedRange",
    "PayloadTooLargeError",
    "Ranker",
    "RateLimitError",
    "RecoverRequest",
    "RecoverResponse",
    "Reorder",
    "ServerError",
    "ServiceUnavailableError",
    "TerseClient",
    "TerseConnectionError",
    "TerseError",
    "TerseResponseError",
    "TerseTimeoutError",
    "WordLabel",
    "__version__",
    "parse_retry_after",
]
