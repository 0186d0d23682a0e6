"""`terse`, the operator's command line (the `terse` console script; `python -m app` is `terse serve`).

    terse serve [--model M --quantization Q --port P ...]   every setting is a flag; TERSE_* too
    terse compress FILE|- [--url U --rate R --question Q]    call a running service (torch-free)

The serve flags are generated from app/settings.py, the one source of the README's settings table, so a
new setting gets its flag, its variable and its help line at once. A flag wins over its variable.
Before anything loads, the start checks the environment: a misspelt TERSE_* variable is named with the
closest known one, a bad value stops the start with a message, and running without auth is logged."""

from __future__ import annotations

import argparse
import logging
import os
import sys
import typing
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from .settings import PREFIX, Settings, unknown_variables

log = logging.getLogger("terse.cli")
DEFAULT_URL = "http://127.0.0.1:8000"


class StartError(SystemExit):
    """A start refused before anything loaded: the message goes to stderr, the exit status is 2."""

    def __init__(self, message: str) -> None:
        print(f"terse: {message}", file=sys.stderr)
        super().__init__(2)


# -- terse serve ------------------------------------------------------------------------------------
def flag(name: str) -> str:
    return "--" + name.replace("_", "-")


def add_setting_flags(parser: argparse.ArgumentParser) -> None:
    for name, field in Settings.model_fields.items():
        default = "unset" if field.default in (None, "") else field.default
        help_ = f"{field.description} [env {PREFIX}{name.upper()}; default: {default}]".replace("%", "%%")
        kwargs: dict[str, Any] = {"dest": name, "default": None, "help": help_}
        if field.annotation is bool:
            kwargs["action"] = argparse.BooleanOptionalAction
        else:
            choices = typing.get_args(field.annotation) if typing.get_origin(field.annotation) is typing.Literal else ()
            kwargs["metavar"] = "{" + ",".join(choices) + "}" if choices else name.upper()
        parser.add_argument(flag(name), **kwargs)


def describe(error: ValidationError) -> str:
    lines = []
    for e in error.errors():
        name = str(e["loc"][0]) if e["loc"] else "?"
        lines.append(f"  {PREFIX}{name.upper()} ({flag(name)}) = {e.get('input')!r}: {e['msg']}")
    return "invalid settings, nothing started:\n" + "\n".join(lines)


def load_settings(overrides: Mapping[str, Any], environ: Mapping[str, str] | None = None) -> Settings:
    """Settings from the flags given and the environment; a bad value raises StartError."""
    environ = os.environ if environ is None else environ
    if environ.get("TERSE_API_KEY") and not environ.get("TERSE_API_KEYS") and not overrides.get("api_keys"):
        # The clients' variable: set on a server it would leave every route open, so refuse instead.
        raise StartError(
            "TERSE_API_KEY is set but the server reads TERSE_API_KEYS (plural, comma-separated keys); "
            "without it authentication would be off. Set TERSE_API_KEYS, or unset TERSE_API_KEY."
        )
    try:
        return Settings(**{k: v for k, v in overrides.items() if v is not None})
    except ValidationError as e:
        raise StartError(describe(e)) from None


def announce(settings: Settings, environ: Mapping[str, str] | None = None) -> None:
    """Warnings an operator needs at start, as log lines: unknown variables, auth off."""
    for name, close in unknown_variables(environ):
        hint = f"; did you mean {close}?" if close else ""
        log.warning(
            f"unknown variable {name} is ignored{hint}",
            extra={"fields": {"variable": name, "closest": close}},
        )
    if not settings.api_keys:
        log.warning(
            "authentication is off: TERSE_API_KEYS is empty, so anyone who reaches the port may compress",
            extra={"fields": {"auth": "off"}},
        )


def serve(args: argparse.Namespace) -> int:
    settings = load_settings({name: getattr(args, name) for name in Settings.model_fields})
    from .logging import configure

    configure(settings.log_level)
    announce(settings)
    from .server import run  # torch and the model come in only now

    return run(settings)


# -- terse compress ---------------------------------------------------------------------------------
def read_inputs(files: Sequence[str]) -> list[str]:
    return [sys.stdin.read() if f == "-" else Path(f).read_text(encoding="utf-8") for f in files]


def compress(args: argparse.Namespace) -> int:
    try:
        from terse_client import TerseClient, TerseError
    except ImportError:
        print("terse compress needs the terse-client package: pip install ./clients/python", file=sys.stderr)
        return 2
    try:
        texts = read_inputs(args.files)
    except OSError as e:
        print(f"terse compress: {e}", file=sys.stderr)
        return 2
    options = {
        "question": args.question,
        "instruction": args.instruction,
        "rate": args.rate,
        "target_tokens": args.target_tokens,
        "method": args.method,
        "deadline_ms": args.deadline_ms,
    }
    try:
        with TerseClient(args.url, args.api_key, timeout=args.timeout, max_retries=args.retries) as client:
            out = client.compress(texts[0] if len(texts) == 1 else texts, **options)
    except (TerseError, ValidationError) as e:
        print(f"terse compress: {e}", file=sys.stderr)
        return 1
    if args.json:
        print(out.model_dump_json(indent=2))
    else:
        print(out.compressed_prompt)
        print(
            f"terse: {out.original_tokens} -> {out.compressed_tokens} tokens (x{out.ratio:.2f})",
            file=sys.stderr,
        )
    return 0


# -- the parser -------------------------------------------------------------------------------------
def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="terse", description="terse: prompt compression as an HTTP service.")
    sub = parser.add_subparsers(dest="command", required=True, metavar="{serve,compress}")

    s = sub.add_parser(
        "serve",
        help="serve the model over HTTP (what `python -m app` does)",
        description="Serve terse. Every setting is a flag and a TERSE_* variable; the flag wins.",
    )
    add_setting_flags(s)
    s.set_defaults(run=serve)

    c = sub.add_parser(
        "compress",
        help="compress a file (or stdin) with a running terse service",
        description="Send FILE (or stdin, `-`) to a running service; prints the compressed prompt. "
        "Several files go as separate documents of one request.",
    )
    c.add_argument("files", nargs="+", metavar="FILE|-", help="text to compress; `-` reads stdin")
    c.add_argument("--url", default=os.environ.get("TERSE_URL") or DEFAULT_URL, help="service [env TERSE_URL]")
    c.add_argument("--api-key", default=None, help="bearer key [env TERSE_API_KEY]")
    c.add_argument("--rate", type=float, default=None, help="fraction of tokens to keep (service default 0.5)")
    c.add_argument("--target-tokens", type=int, default=None, help="token budget; wins over --rate")
    c.add_argument("--question", default=None, help="the question the prompt must answer (LongLLMLingua)")
    c.add_argument("--instruction", default=None, help="instruction kept verbatim")
    c.add_argument("--method", choices=("llmlingua", "longllmlingua"), default=None)
    c.add_argument("--deadline-ms", type=int, default=None, help="the service gives up after this long (504)")
    c.add_argument("--timeout", type=float, default=120.0, help="seconds per HTTP request (default 120)")
    c.add_argument("--retries", type=int, default=2, help="retries on 429/503/transport errors (default 2)")
    c.add_argument("--json", action="store_true", help="print the whole JSON answer, not just the prompt")
    c.set_defaults(run=compress)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return args.run(args)


if __name__ == "__main__":
    sys.exit(main())
