"""The `steerbench` command. Each command family registers its subcommands with a handler
(`run`: scenarios, agents, eval, collect; `train`: train-e2e, train-detector, train-lanes; `study`: compare,
scale, ceiling, diagnose, errors; `paired`; `tune`); shared flags and types are in `common`. `main` only
parses, dispatches, and maps errors and signals to exit statuses."""

from __future__ import annotations

import argparse
import os
import select
import signal
import sys
import threading
from typing import Sequence

from steerbench.sim.errors import SteerbenchError

from . import common, paired, run, study, train, tune

FAMILIES = (run, train, study, paired, tune)


class Terminated(KeyboardInterrupt):
    """SIGTERM, raised where the process is, so that worker pools are shut down on the way out
    (the default action would kill only this process and leave its pool workers running)."""


def _on_sigterm(signum: int, frame: object) -> None:
    raise Terminated()


def build_parser() -> argparse.ArgumentParser:
    """The whole command line: one subparser per command, each with its handler."""
    p = common.Parser(prog="steerbench", description="Modular vs end-to-end driving on highway-env.")
    sub = p.add_subparsers(dest="command", required=True, parser_class=common.Parser)
    for family in FAMILIES:
        family.register(sub)
    return p


def _stdout_gone() -> bool:
    """Whether stdout is a pipe whose reader has closed it (poll reports an error on its end)."""
    try:
        poll = select.poll()
        poll.register(sys.stdout.fileno(), select.POLLOUT)
        return any(event & (select.POLLERR | select.POLLHUP) for _, event in poll.poll(0))
    except (AttributeError, OSError, ValueError):  # no poll here, or no real stdout: take it as ours
        return True


def main(argv: Sequence[str] | None = None) -> int:
    """Run one command; user errors are one line on stderr and exit status 2."""
    args = build_parser().parse_args(argv)
    if os.getcwd() not in sys.path:  # module:Class paths resolve from here, as with uvicorn
        sys.path.insert(0, os.getcwd())
    in_main_thread = threading.current_thread() is threading.main_thread()
    previous = signal.signal(signal.SIGTERM, _on_sigterm) if in_main_thread else None
    try:
        return args.handler(args)
    except SteerbenchError as exc:
        print(f"steerbench: error: {exc}", file=sys.stderr)
        return 2
    except Terminated:
        print("steerbench: terminated; finished episodes are saved, re-run the command to resume", file=sys.stderr)
        return 128 + signal.SIGTERM
    except KeyboardInterrupt:
        print("steerbench: interrupted; finished episodes are saved, re-run the command to resume", file=sys.stderr)
        return 130
    except BrokenPipeError:  # the reader of our output went away (`| head`): stop as `cat` would
        if not _stdout_gone():
            raise  # another pipe broke (a worker's): a real error
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # no second error at exit's flush
        return 128 + signal.SIGPIPE
    finally:
        if in_main_thread:
            signal.signal(signal.SIGTERM, previous)


if __name__ == "__main__":
    sys.exit(main())
