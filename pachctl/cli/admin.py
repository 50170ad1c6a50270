"""garbage-collect: reclaim blocks that no commit references."""

from __future__ import annotations

import argparse

from pachctl.cli import render
from pachctl.cli.common import add
from pachyderm_client import Client


def garbage_collect(args: argparse.Namespace, client: Client) -> None:
    done = client.garbage_collect(grace_seconds=args.grace, dry_run=args.dry_run)
    verb = "would remove" if args.dry_run else "removed"
    print(f"{verb} {done.blocks_removed} blocks ({render.size(done.block_bytes_removed)}) and "
          f"{done.nodes_removed} tree nodes ({render.size(done.node_bytes_removed)}); "
          f"kept {done.blocks_kept} blocks ({render.size(done.bytes_kept)})")


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    gc = add(sub, "garbage-collect", garbage_collect,
             "Remove the blocks that no commit references (of deleted repos and commits, and of uploads "
             "that never finished).")
    gc.add_argument("--grace", type=float, default=None,
                    help="keep what was written less than this many seconds ago (default: pachd's, 600)")
    gc.add_argument("--dry-run", action="store_true", help="only report what would be removed")
