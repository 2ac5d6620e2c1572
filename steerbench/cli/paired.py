"""`steerbench paired A B`: one contestant against another on the episodes both ran (steerbench/study/paired.py)."""

from __future__ import annotations

import argparse

from . import common


def register(sub) -> None:
    """Add `paired`."""
    p = common.command(sub, "paired", cmd_paired,
                       "one contestant minus another, paired on the episodes both ran, training seeds included")
    p.add_argument("a", help="RUN or RUN:NAME, a run directory and one of its contestants (an agent label, or "
                             "the copies NAME-s<k> of a learned one; needed when the run holds several)")
    p.add_argument("b", help="the other side, as A (the same run with another NAME, or another run)")
    p.add_argument("--metric", default="driving_score", help="one of the study's metrics (docs/study.md)")
    p.add_argument("--splits", default=None, help="comma-separated splits (default: every split both ran)")


def cmd_paired(args: argparse.Namespace) -> int:
    """`steerbench paired A B`: print A - B per scenario and split, and over all scenarios."""
    from steerbench.sim.scenarios import check_split
    from steerbench.study.design import STUDY_METRICS
    from steerbench.study.paired import paired_rows, paired_table, parse_side

    if args.metric not in STUDY_METRICS:
        raise common.UsageError(f"--metric {args.metric!r} is none of {', '.join(STUDY_METRICS)}")

    splits = tuple(s.strip() for s in args.splits.split(",") if s.strip()) if args.splits else ()
    for split in splits:
        check_split(split)
    a, b = parse_side(args.a), parse_side(args.b)
    rows = paired_rows(a, b, args.metric, splits)
    print(paired_table(rows, args.a, args.b, args.metric))
    return 0
