"""Each pipeline's newest output laid out on this machine, for its next job's pods.

A folder per output repo holds the files of one commit of it, written only by
pachd (PFS's check_out, from the commit's own blocks) and never by a pod: pods
mount it below their /pfs/out and at /pfs/prev (overlay.py). It is known by the
root node of the tree it holds, not by a commit ID (a pipeline made again makes
commits of the same IDs with other files). When a job wants another commit, the
folder is brought to it by what changed between the two trees, so a pipeline's
incremental job costs what it changes, not the size of its output.

A folder is moved only while no pod uses it: the pods of the job before, which
have reported but may still be ending, are waited for (up to IDLE_WAIT); a pod
that would need it at another commit meanwhile gets its output written the old
way (the shim's copy). A folder goes with its pipeline (drop), and a restarted
pachd removes them all (recover), since a kill -9 may have stopped one between
two trees.
"""

from __future__ import annotations

import asyncio
import logging
import shutil
from collections.abc import Coroutine
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

logger = logging.getLogger(__name__)

IDLE_WAIT = 30.0  # seconds a move waits for the pods using the folder to end


class Layouts(Protocol):
    """How commits are laid out (PFS's checkout.Checkouts)."""

    async def root(self, repo: str, commit: str) -> str:
        """The root node of the finished commit's tree: what its files are, whatever its ID (a
        pipeline made again can make commits of the same IDs with other files)."""

    async def check_out(self, repo: str, commit: str, folder: Path, since: str | None,
                        owner: tuple[int, int] | None) -> int:
        """Makes `folder`, holding the tree of root node `since` (None: nothing), hold `commit`."""


@dataclass
class _Tree:
    folder: Path
    root: str | None = None  # the root node of the tree the folder holds; None while it holds nothing known
    users: int = 0  # pods mounting it now
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    idle: asyncio.Event = field(default_factory=asyncio.Event)  # set while no pod mounts it

    def __post_init__(self) -> None:
        self.idle.set()


class OutputTrees:
    def __init__(self, root: Path, layouts: Layouts, owner: tuple[int, int] | None) -> None:
        self._root = root
        self._layouts = layouts
        self._owner = owner
        self._trees: dict[str, _Tree] = {}
        self._background: set[asyncio.Task[None]] = set()

    async def lease(self, repo: str, commit: str) -> Path | None:
        """The folder holding `commit` of `repo`, in use until release(repo); None if it cannot
        be had now (pods use it at another commit past IDLE_WAIT, or laying it out failed: logged)."""
        tree = self._trees.setdefault(repo, _Tree(self._root / repo))
        async with tree.lock:
            try:
                wanted = await self._layouts.root(repo, commit)
            except Exception as err:  # noqa: BLE001  # gone meanwhile, say: the shim copies instead
                logger.warning("cannot lay out %s@%s for its pods (they copy it instead): %s", repo, commit, err)
                return None
            if tree.root != wanted:
                try:
                    await asyncio.wait_for(tree.idle.wait(), IDLE_WAIT)
                except TimeoutError:
                    return None
                if not await self._move(repo, tree, commit, wanted):
                    return None
            tree.users += 1
            tree.idle.clear()
            return tree.folder

    def release(self, repo: str) -> None:
        tree = self._trees.get(repo)
        if tree is not None and tree.users > 0:
            tree.users -= 1
            if not tree.users:
                tree.idle.set()

    def lay_out_ahead(self, repo: str, commit: str) -> None:
        """Starts bringing the repo's folder to `commit` now (a pipeline's newest output), so its
        next job's pods find it ready; a lease asked for meanwhile waits for it."""
        # One under way is not cancelled for a newer one: its writes run in threads, which a cancel would not stop.
        self._in_background(self._ready(repo, commit), f"lay-out-{repo}")

    def drop(self, repo: str) -> None:
        """Starts removing the repo's folder (its pipeline was deleted), once no pod uses it."""
        if repo in self._trees:
            self._in_background(self._remove(self._trees[repo]), f"drop-{repo}")

    def _in_background(self, work: Coroutine[object, object, None], name: str) -> None:
        task = asyncio.create_task(work, name=name)
        self._background.add(task)  # held until done: the loop keeps only weak references to tasks
        task.add_done_callback(self._background.discard)

    async def _ready(self, repo: str, commit: str) -> None:
        if await self.lease(repo, commit) is not None:
            self.release(repo)

    async def _move(self, repo: str, tree: _Tree, commit: str, wanted: str) -> bool:
        since, tree.root = tree.root, None
        try:
            if since is None:
                await asyncio.to_thread(shutil.rmtree, tree.folder, True)
            changed = await self._layouts.check_out(repo, commit, tree.folder, since, self._owner)
        except asyncio.CancelledError:
            raise
        except Exception as err:  # noqa: BLE001  # the pods fall back to the shim's copy; nothing is lost
            logger.warning("cannot lay out %s@%s for its pods (they copy it instead): %s", repo, commit, err)
            await asyncio.to_thread(shutil.rmtree, tree.folder, True)  # what it wrote is of no use: its room back
            return False
        tree.root = wanted
        logger.debug("laid out %s@%s (%d paths changed since %s)", repo, commit, changed,
                     "nothing" if since is None else f"tree {since[:12] or 'empty'}")
        return True

    async def _remove(self, tree: _Tree) -> None:
        async with tree.lock:
            try:
                await asyncio.wait_for(tree.idle.wait(), IDLE_WAIT)
            except TimeoutError:
                return  # still mounted: removed when pachd next starts
            tree.root = None  # kept, with its lock: a pipeline made again under the name waits for this
            await asyncio.to_thread(shutil.rmtree, tree.folder, True)

    async def close(self) -> None:
        for task in self._background:
            task.cancel()
        await asyncio.gather(*self._background, return_exceptions=True)
