"""
Run the emulator from the command line: ``python -m provisioner.emulator``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import signal
import sys
from collections.abc import Sequence
from typing import Any

from aiohttp import web

from provisioner.emulator.app import create_app
from provisioner.emulator.config import (
    DEFAULT_TOKEN,
    EmulatorConfig,
    OrgSpec,
    org_token,
    parse_token,
)

__all__ = ["build_parser", "config_from_args", "main", "serve"]

LOOPBACK = "127.0.0.1"


def build_parser() -> argparse.ArgumentParser:
    """
    Describe the emulator's flags; they mirror ``EmulatorConfig``.
    """
    parser = argparse.ArgumentParser(
        prog="provisioner emulator",
        description=(
            "A local Webex Devices API with fault injection. The first line printed "
            "is the base URL, e.g. http://127.0.0.1:PORT/v1. The admin view (no auth) "
            "is under /_emulator/."
        ),
    )
    add = parser.add_argument
    add("--host", default=LOOPBACK, help="address to bind (default 127.0.0.1)")
    add(
        "--port", type=int, default=8080, help="port; 0 picks a free one (default 8080)"
    )
    add(
        "--seed", type=int, default=0, help="seed for ids, codes and faults (default 0)"
    )
    add(
        "--rate-limit",
        type=float,
        default=None,
        metavar="R",
        help="global token bucket, requests per second (default: no limit)",
    )
    add(
        "--burst",
        type=int,
        default=10,
        metavar="B",
        help="token bucket capacity (default 10)",
    )
    add("--latency-ms", type=float, default=0.0, metavar="L", help="added latency")
    add(
        "--jitter-ms",
        type=float,
        default=0.0,
        metavar="J",
        help="latency varies uniformly by +/- J ms",
    )
    add(
        "--fault-rate",
        type=float,
        default=0.0,
        metavar="F",
        help="share of requests answered 502/503/504",
    )
    add(
        "--drop-rate",
        type=float,
        default=0.0,
        metavar="D",
        help="share of connections closed before any state change",
    )
    add(
        "--ambiguous-rate",
        type=float,
        default=0.0,
        metavar="A",
        help="share of POST /devices that create the device, then drop the connection",
    )
    add(
        "--token",
        action="append",
        default=None,
        metavar="TOKEN[:scope,scope]",
        help=f"accepted bearer token, repeatable; no scope list means all scopes "
        f"(default: {DEFAULT_TOKEN} with all scopes)",
    )
    add(
        "--page-size",
        type=int,
        default=100,
        metavar="N",
        help="default page size of list calls (default 100)",
    )
    add(
        "--mac-in-use-status",
        type=int,
        default=400,
        choices=(400, 409),
        help="status of a create whose MAC is registered (default 400)",
    )
    add(
        "--unknown-owner-status",
        type=int,
        default=404,
        choices=(400, 404),
        help="status of a create for a missing workspace/person (default 404)",
    )
    add(
        "--echo-request-body",
        action="store_true",
        help="4xx answers quote the request body in their message, as some "
        "gateways do (to test a client's redaction)",
    )
    add(
        "--no-activation-code-id",
        dest="activation_code_id",
        action="store_false",
        help="answer an activation code with only code and expiryTime, as documented "
        "(no pending device id)",
    )
    add(
        "--request-log-size",
        type=int,
        default=10_000,
        metavar="N",
        help="requests kept by GET /_emulator/requests (default 10000)",
    )
    _add_org_flags(parser)
    add("--access-log", action="store_true", help="log every request (slower)")
    return parser


def _add_org_flags(parser: argparse.ArgumentParser) -> None:
    orgs = parser.add_argument_group(
        "orgs",
        "Extra orgs beside the seeded one, keyed org1..orgN, each with its own "
        "directory, devices and token bucket. Org K's admin token is "
        f"{org_token('orgK')}.",
    )
    add = orgs.add_argument
    add("--orgs", type=int, default=0, metavar="N", help="extra orgs (default 0)")
    add(
        "--org-rate-limit",
        action="append",
        default=[],
        metavar="KEY=R",
        help="that org's token bucket, requests per second (default: no limit)",
    )
    add(
        "--org-burst",
        action="append",
        default=[],
        metavar="KEY=B",
        help="that org's bucket capacity (default 10)",
    )
    add(
        "--org-latency-ms",
        action="append",
        default=[],
        metavar="KEY=L",
        help="latency added to that org's requests",
    )
    add(
        "--partner",
        action="append",
        default=[],
        metavar="TOKEN=KEY[,KEY]",
        help="a partner token: acts for the seeded org and, with orgId, for the "
        "orgs listed; scopes from --token, else all (repeatable)",
    )


def _pairs(texts: Sequence[str], flag: str) -> dict[str, str]:
    pairs = {}
    for text in texts:
        key, sep, value = text.partition("=")
        if not sep or not key or not value:
            raise ValueError(f"{flag} wants KEY=VALUE, got {text!r}")
        pairs[key] = value
    return pairs


def _org_specs(args: argparse.Namespace) -> tuple[OrgSpec, ...]:
    if args.orgs < 0:
        raise ValueError("--orgs must not be negative")
    keys = [f"org{n}" for n in range(1, args.orgs + 1)]
    settings: dict[str, dict[str, Any]] = {key: {} for key in keys}
    for flag, name, kind in (
        ("--org-rate-limit", "rate_limit", float),
        ("--org-burst", "burst", int),
        ("--org-latency-ms", "latency_ms", float),
    ):
        texts = getattr(args, flag.removeprefix("--").replace("-", "_"))
        for key, value in _pairs(texts, flag).items():
            if key not in settings:
                raise ValueError(f"{flag}: no org {key!r} (--orgs gives {keys})")
            settings[key][name] = kind(value)
    return tuple(OrgSpec(key=key, **settings[key]) for key in keys)


def config_from_args(args: argparse.Namespace) -> EmulatorConfig:
    """
    Turn parsed flags into an ``EmulatorConfig``.
    """
    tokens = dict(parse_token(text) for text in args.token or [DEFAULT_TOKEN])
    partners = {
        token: tuple(k.strip() for k in keys.split(",") if k.strip())
        for token, keys in _pairs(args.partner, "--partner").items()
    }
    return EmulatorConfig(
        seed=args.seed,
        rate_limit=args.rate_limit,
        burst=args.burst,
        latency_ms=args.latency_ms,
        jitter_ms=args.jitter_ms,
        fault_rate=args.fault_rate,
        drop_rate=args.drop_rate,
        ambiguous_rate=args.ambiguous_rate,
        page_size=args.page_size,
        mac_in_use_status=args.mac_in_use_status,
        unknown_owner_status=args.unknown_owner_status,
        tokens=tokens,
        orgs=_org_specs(args),
        partners=partners,
        echo_request_body=args.echo_request_body,
        activation_code_id=args.activation_code_id,
        request_log_size=args.request_log_size,
    )


async def serve(
    config: EmulatorConfig, host: str, port: int, *, access_log: bool = False
) -> None:
    """
    Serve until SIGINT or SIGTERM; print the base URL first, flushed.
    """
    if access_log:
        logging.basicConfig(level=logging.INFO, stream=sys.stderr)
    # aiohttp logs every request by default; that costs a third of the throughput.
    extra: dict[str, Any] = {} if access_log else {"access_log": None}
    runner = web.AppRunner(create_app(config), **extra)
    await runner.setup()
    site = web.TCPSite(runner, host, port)
    await site.start()
    bound = runner.addresses[0][1]
    # The first line of stdout is the contract with run_in_subprocess and scripts.
    sys.stdout.write(f"http://{host}:{bound}/v1\n")
    sys.stdout.flush()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(signum, stop.set)
    try:
        await stop.wait()
    finally:
        await runner.cleanup()


def main(argv: Sequence[str] | None = None) -> int:
    """
    Parse ``argv`` and serve; return the exit status.
    """
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        config = config_from_args(args)
    except ValueError as exc:
        parser.error(str(exc))
    try:
        asyncio.run(serve(config, args.host, args.port, access_log=args.access_log))
    except OSError as exc:
        sys.stderr.write(f"emulator: cannot listen on {args.host}:{args.port}: {exc}\n")
        return 2
    except KeyboardInterrupt:
        return 130
    return 0
