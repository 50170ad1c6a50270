"""The metadata consistency checker: does the KV store agree with itself and with the block store?

    python -m pachd.check --data-dir DIR [--etcd HOST:PORT] [--storage gcs|s3|azure ...] [--verify-data]

`check(kv, blocks)` reads every PFS and PPS key (one range per domain), then
checks what the domain code relies on: commits belong to existing repos and
their parents exist; branch heads name existing commits and each branch's
commits are numbered 0..head; provenance names existing repos and commits;
finished commits have a finish time, a stored tree whose nodes and blocks all
exist, and sizes that match their files; pending diffs belong to open
commits (blocks that no commit references are reported apart: they are no
inconsistency, and `pachctl garbage-collect` reclaims them); pipelines have their output repo; jobs name existing pipelines,
commits and pods' commits. It returns one line per problem (empty: consistent)
and changes nothing. Run it on a stopped or idle pachd: a store read while
pachd writes can show passing states as problems.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import logging
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from pachd import config as pachd_config
from pachd import validate
from pachd.config import PachdConfig
from pachd.errors import BlockNotFound, PachError
from pachd.pfs import keys as pfs_keys
from pachd.pfs.blocks import PREFIX as BLOCK_PREFIX
from pachd.pfs.blocks import block_name
from pachd.pfs.gc import unreferenced
from pachd.pfs.records import (
    BlockRef,
    BranchRecord,
    CommitKey,
    CommitRecord,
    FileDiff,
    RepoRecord,
    decode_branch,
    decode_commit,
    decode_diff,
    decode_repo,
)
from pachd.pfs.tree import EMPTY, DirEntry, FileEntry, Node, decode_node, file_change
from pachd.pps import keys as pps_keys
from pachd.pps.specs import JobRecord, JobState, PipelineRecord, decode_job, decode_pipeline
from pachd.storage import open_block_store, open_kv
from pachd.storage.blocks import BlockStore
from pachd.storage.kv import KV

logger = logging.getLogger(__name__)

_TREE_PREFIX = "trees/"


def _name(key: CommitKey) -> str:
    return f"{key[0]}/{key[1]}/{key[2]}"


@dataclass(slots=True)
class _Metadata:
    """Every PFS and PPS record, decoded."""

    repos: dict[str, RepoRecord] = field(default_factory=dict)
    branches: dict[tuple[str, str], BranchRecord] = field(default_factory=dict)
    commits: dict[CommitKey, CommitRecord] = field(default_factory=dict)
    diffs: list[tuple[CommitKey, str, FileDiff]] = field(default_factory=list)  # resets have path "/"
    provenance_index: set[tuple[CommitKey, CommitKey]] = field(default_factory=set)
    pipelines: dict[str, PipelineRecord] = field(default_factory=dict)
    heads: dict[str, str] = field(default_factory=dict)
    triggers: list[tuple[str, str]] = field(default_factory=list)  # (pipeline, job ID or "")
    jobs: dict[str, JobRecord] = field(default_factory=dict)
    pipeline_jobs: set[tuple[str, str]] = field(default_factory=set)

    def commit(self, repo: str, commit_id: str) -> CommitRecord | None:
        """The commit a canonical `branch/number` ID names, if it exists."""
        try:
            branch, number = validate.commit_id(commit_id)
        except PachError:
            return None
        return self.commits.get((repo, branch, number)) if number is not None else None


# -- reading every key ----------------------------------------------------------------


def _read_repo(meta: _Metadata, key: str, value: bytes) -> str:
    record = decode_repo(value)
    meta.repos[record.name] = record
    return pfs_keys.repo(record.name)


def _read_branch(meta: _Metadata, key: str, value: bytes) -> str:
    repo, branch = pfs_keys.branch_from_key(key)
    meta.branches[repo, branch] = decode_branch(value)
    return pfs_keys.branch(repo, branch)


def _read_commit(meta: _Metadata, key: str, value: bytes) -> str:
    record = decode_commit(value)
    meta.commits[record.key] = record
    return pfs_keys.commit(*record.key)


def _read_diff(meta: _Metadata, key: str, value: bytes) -> str:
    commit, path = pfs_keys.diff_from_key(key)
    meta.diffs.append((commit, path, decode_diff(value)))
    write = pfs_keys.append_write(key)
    return pfs_keys.appended(*commit, path, write) if write else pfs_keys.diff(*commit, path)


def _read_reset(meta: _Metadata, key: str, value: bytes) -> str:
    commit = pfs_keys.commit_from_key(key)
    meta.diffs.append((commit, "/", decode_diff(value)))
    return pfs_keys.root_reset(*commit)


def _read_provenance(meta: _Metadata, key: str, value: bytes) -> str:
    upstream, downstream = pfs_keys.provenance_from_key(key)
    meta.provenance_index.add((upstream, downstream))
    return pfs_keys.provenance_entry(upstream, downstream)


def _read_pipeline(meta: _Metadata, key: str, value: bytes) -> str:
    record = decode_pipeline(value)
    meta.pipelines[record.name] = record
    return pps_keys.pipeline(record.name)


def _read_head(meta: _Metadata, key: str, value: bytes) -> str:
    name = pps_keys.name_from_key(key)
    meta.heads[name] = value.decode()
    return pps_keys.head(name)


def _read_trigger(meta: _Metadata, key: str, value: bytes) -> str:
    name, version, repo, commit_id = pps_keys.trigger_from_key(key)
    meta.triggers.append((name, value.decode()))
    return pps_keys.trigger(name, version, repo, commit_id)


def _read_job(meta: _Metadata, key: str, value: bytes) -> str:
    record = decode_job(value)
    meta.jobs[record.id] = record
    return pps_keys.job(record.id)


def _read_pipeline_job(meta: _Metadata, key: str, value: bytes) -> str:
    name, job_id = pps_keys.pipeline_job_from_key(key)
    meta.pipeline_jobs.add((name, job_id))
    return pps_keys.pipeline_job(name, job_id)


def _ignore(meta: _Metadata, key: str, value: bytes) -> str:
    return key


# Each reader returns the key its record belongs at; a different key means a misfiled record.
_READERS: list[tuple[str, Callable[[_Metadata, str, bytes], str]]] = [
    (pfs_keys.repos(), _read_repo),
    (pfs_keys.all_branches(), _read_branch),
    (pfs_keys.all_commits(), _read_commit),
    (pfs_keys.all_diffs(), _read_diff),
    (pfs_keys.all_resets(), _read_reset),
    (pfs_keys.all_provenance(), _read_provenance),
    (pps_keys.pipelines(), _read_pipeline),
    (pps_keys.all_heads(), _read_head),
    (pps_keys.all_triggers(), _read_trigger),
    (pps_keys.jobs(), _read_job),
    (pps_keys.all_pipeline_jobs(), _read_pipeline_job),
    (pps_keys.owners(), _ignore),  # leases of live replicas: nothing to check
    (pps_keys.pod_secret(), _ignore),  # signs pods' job credentials: any value will do
]


async def _read(kv: KV, problems: list[str]) -> _Metadata:
    meta = _Metadata()
    for root in (pfs_keys.ROOT, pps_keys.ROOT):
        for item in (await kv.range(root)).kvs:
            reader = next((read for prefix, read in _READERS if item.key.startswith(prefix)), None)
            if reader is None:
                problems.append(f"key {item.key!r}: not a key pachd writes")
                continue
            try:
                expected = reader(meta, item.key, item.value)
            except (ValueError, KeyError, TypeError, IndexError, AttributeError) as err:
                problems.append(f"key {item.key!r}: cannot be read ({type(err).__name__}: {err})")
                continue
            if expected != item.key:
                problems.append(f"key {item.key!r}: holds the record of {expected!r}")
    return meta


# -- PFS records ------------------------------------------------------------------------


def _check_repos(meta: _Metadata, problems: list[str]) -> None:
    # A repo's size counts its finished commits, except those archived when they finished
    # (archived later: still counted), so it lies between these two sums.
    lowest: dict[str, int] = {}
    highest: dict[str, int] = {}
    for commit in meta.commits.values():
        if not commit.is_open:
            highest[commit.repo] = highest.get(commit.repo, 0) + commit.size_bytes
            if not commit.archived:
                lowest[commit.repo] = lowest.get(commit.repo, 0) + commit.size_bytes
    for name, repo in meta.repos.items():
        for upstream in repo.provenance:
            if upstream not in meta.repos:
                problems.append(f"repo {name}: provenance repo {upstream} does not exist")
        if not set(repo.provenance) <= set(repo.full_provenance):
            problems.append(f"repo {name}: full provenance lacks part of its immediate provenance")
        if name in repo.full_provenance:
            problems.append(f"repo {name}: is its own provenance")
        low, high = lowest.get(name, 0), highest.get(name, 0)
        if not low <= repo.size_bytes <= high:
            problems.append(f"repo {name}: size {repo.size_bytes} does not match its finished commits "
                            f"({low}..{high} bytes)")


def _check_branches(meta: _Metadata, problems: list[str]) -> None:
    numbers: dict[tuple[str, str], set[int]] = {}
    for repo, branch, number in meta.commits:
        numbers.setdefault((repo, branch), set()).add(number)
    for (repo, branch), record in meta.branches.items():
        if repo not in meta.repos:
            problems.append(f"branch {repo}/{branch}: repo {repo} does not exist")
        if (repo, branch, record.head) not in meta.commits:
            problems.append(f"branch {repo}/{branch}: head {branch}/{record.head} does not exist")
        found = numbers.get((repo, branch), set())
        if found and found != set(range(record.head + 1)):
            problems.append(f"branch {repo}/{branch}: commits {sorted(found)[:10]} are not numbered "
                            f"0..{record.head} (the head)")
    for repo, branch in numbers.keys() - meta.branches.keys():
        problems.append(f"branch {repo}/{branch}: has commits but no branch record")


def _check_commit(meta: _Metadata, commit: CommitRecord, problems: list[str]) -> None:
    name = f"commit {_name(commit.key)}"
    if commit.repo not in meta.repos:
        problems.append(f"{name}: repo {commit.repo} does not exist")
    if not commit.clock or commit.clock[-1] != (commit.branch, commit.number):
        problems.append(f"{name}: its clock {commit.clock} does not end with its own ID")
    elif commit.parent is not None:
        parent = meta.commits.get((commit.repo, *commit.parent))
        if parent is None:
            problems.append(f"{name}: parent {commit.parent[0]}/{commit.parent[1]} does not exist")
        elif not _clock_follows(parent, commit):
            problems.append(f"{name}: its clock does not continue its parent's")
        elif parent.is_open and not commit.is_open:
            problems.append(f"{name}: finished while its parent is still open")
    for upstream in commit.provenance:
        if upstream not in meta.commits:
            problems.append(f"{name}: provenance commit {_name(upstream)} does not exist")
        elif (upstream, commit.key) not in meta.provenance_index:
            problems.append(f"{name}: the provenance index lacks its entry for {_name(upstream)}")
    if commit.is_open:
        return
    if commit.finishing:
        problems.append(f"{name}: finished but still marked as finishing")
    if commit.finished is not None and commit.finished < commit.started:
        problems.append(f"{name}: finished before it started")


def _clock_follows(parent: CommitRecord, child: CommitRecord) -> bool:
    if child.number > 0:
        return parent.clock == child.clock[:-1] + ((child.branch, child.number - 1),)
    return parent.clock == child.clock[:-1]


def _check_pending(meta: _Metadata, problems: list[str]) -> None:
    for commit, path, _ in meta.diffs:
        record = meta.commits.get(commit)
        if record is None:
            problems.append(f"diff {_name(commit)}:{path}: its commit does not exist")
        elif not record.is_open:
            problems.append(f"diff {_name(commit)}:{path}: its commit is finished (diffs should be gone)")


# -- trees and blocks ---------------------------------------------------------------------


class _Trees:
    """Checks stored trees and the blocks they refer to, each node and block once."""

    def __init__(self, blocks: BlockStore, problems: list[str], *, verify_data: bool) -> None:
        self._blocks = blocks
        self._problems = problems
        self._verify = verify_data
        self._nodes: dict[str, Node | None] = {}  # None: missing or damaged
        self._sizes: dict[str, int | None] = {}  # bytes below each checked node; None: damaged
        self._block_sizes: dict[str, int | None] = {}

    async def node(self, node: str, where: str) -> Node | None:
        if node == EMPTY:
            return {}
        if node not in self._nodes:
            self._nodes[node] = await self._load(node, where)
        return self._nodes[node]

    async def _load(self, node: str, where: str) -> Node | None:
        try:
            data = await self._blocks.get(_TREE_PREFIX + node)
        except BlockNotFound:
            self._problems.append(f"{where}: tree node {node} is missing from the block store")
            return None
        if hashlib.sha256(data).hexdigest() != node:
            self._problems.append(f"{where}: tree node {node} does not match its hash")
            return None
        try:
            return decode_node(data)
        except (ValueError, KeyError, TypeError, IndexError) as err:
            self._problems.append(f"{where}: tree node {node} cannot be read ({err})")
            return None

    async def size(self, root: str, where: str) -> int | None:
        """Bytes in the tree at `root`, checking every entry below (None: damaged)."""
        stack: list[tuple[str, str, bool]] = [(root, "/", False)]
        while stack:
            node, path, expanded = stack.pop()
            if node in self._sizes:
                continue
            entries = await self.node(node, where)
            if entries is None:
                self._sizes[node] = None
            elif not expanded:
                stack.append((node, path, True))
                stack.extend((e.node, _join(path, n), False) for n, e in entries.items()
                             if isinstance(e, DirEntry) and e.node not in self._sizes)
            else:
                self._sizes[node] = await self._entries_size(entries, path, where)
        return self._sizes[root]

    async def _entries_size(self, entries: Node, path: str, where: str) -> int | None:
        total: int | None = 0
        for name, entry in entries.items():
            child = f"{where}: {_join(path, name)}"
            if isinstance(entry, FileEntry):
                actual: int | None = sum(r.size for r in entry.refs)
                if not await self.refs(entry.refs, child):
                    actual = None
            else:
                actual = self._sizes.get(entry.node)
            if actual is not None and actual != entry.size:
                self._problems.append(f"{child}: recorded size {entry.size} but its contents hold {actual}")
            total = None if total is None or actual is None else total + actual
        return total

    async def refs(self, refs: Sequence[BlockRef], where: str) -> bool:
        """Whether every referenced range exists; reports those that do not."""
        good = True
        for ref in refs:
            size = await self._block_size(ref.hash, where)
            if size is None:
                good = False
            elif not 0 <= ref.lower <= ref.upper <= size:
                self._problems.append(f"{where}: refers to bytes {ref.lower}..{ref.upper} of block "
                                      f"{ref.hash[:16]}…, which has {size}")
                good = False
        return good

    async def _block_size(self, block_hash: str, where: str) -> int | None:
        if block_hash in self._block_sizes:
            return self._block_sizes[block_hash]
        size = None
        try:
            size = (await self._blocks.stat(block_name(block_hash))).size
            if self._verify and hashlib.sha512(await self._blocks.get(BLOCK_PREFIX + block_hash)).hexdigest() != block_hash:
                self._problems.append(f"{where}: block {block_hash[:16]}… does not match its hash")
                size = None
        except BlockNotFound:
            self._problems.append(f"{where}: block {block_hash[:16]}… is missing from the block store")
        except PachError as err:
            self._problems.append(f"{where}: block {block_hash[:16]}…: {err.message}")
        self._block_sizes[block_hash] = size
        return size

    async def added(self, old_root: str, new_root: str, where: str) -> int | None:
        """Bytes the commit with tree `new_root` added to its parent's `old_root`."""
        total = 0
        stack: list[tuple[str | None, str]] = [(old_root, new_root)]
        while stack:
            old, new = stack.pop()
            if old == new:
                continue
            before = await self.node(old, where) if old is not None else {}
            after = await self.node(new, where)
            if before is None or after is None:
                return None
            for name, entry in after.items():
                previous = before.get(name)
                if isinstance(entry, FileEntry):
                    change = file_change(previous, entry)
                    total += sum(r.size for r in change[1]) if change else 0
                else:
                    stack.append((previous.node if isinstance(previous, DirEntry) else None, entry.node))
        return total


def _join(parent: str, name: str) -> str:
    return f"{parent.rstrip('/')}/{name}"


async def _check_data(meta: _Metadata, trees: _Trees, problems: list[str]) -> None:
    """Every finished commit's tree and size; every open commit's pending blocks."""
    for commit in meta.commits.values():
        if commit.is_open:
            continue
        where = f"commit {_name(commit.key)}"
        parent_root = _parent_root(meta, commit)
        if await trees.size(commit.root, where) is None or parent_root is None:
            continue
        added = await trees.added(parent_root, commit.root, where)
        if added is not None and added != commit.size_bytes:
            problems.append(f"{where}: size {commit.size_bytes} but its files gained {added} bytes")
    for commit_key, path, diff in meta.diffs:
        await trees.refs(diff.refs, f"open commit {_name(commit_key)}: {path}")


def _parent_root(meta: _Metadata, commit: CommitRecord) -> str | None:
    """The tree the commit's changes apply to; None when the parent is missing or open."""
    if commit.parent is None:
        return EMPTY
    parent = meta.commits.get((commit.repo, *commit.parent))
    return parent.root if parent is not None and not parent.is_open else None


# -- PPS records ----------------------------------------------------------------------------


def _check_pipelines(meta: _Metadata, problems: list[str]) -> None:
    for name, pipeline in meta.pipelines.items():
        repo = meta.repos.get(name)
        inputs = [i.repo for i in pipeline.inputs]
        if repo is None:
            problems.append(f"pipeline {name}: its output repo {name} does not exist")
        elif set(repo.provenance) != set(inputs):
            problems.append(f"pipeline {name}: output repo provenance {sorted(repo.provenance)} "
                            f"is not its inputs {sorted(inputs)}")
        for missing in [r for r in inputs if r not in meta.repos]:
            problems.append(f"pipeline {name}: input repo {missing} does not exist")
    for name, job_id in meta.heads.items():
        job = meta.jobs.get(job_id)
        if name not in meta.pipelines:
            problems.append(f"head of pipeline {name}: the pipeline does not exist")
        if job is None or job.pipeline != name:
            problems.append(f"head of pipeline {name}: job {job_id} does not exist or is another pipeline's")
    for name, job_id in meta.triggers:
        if name not in meta.pipelines:
            problems.append(f"trigger of pipeline {name}: the pipeline does not exist")
        if job_id and job_id not in meta.jobs:
            problems.append(f"trigger of pipeline {name}: job {job_id} does not exist")
    for name, job_id in meta.pipeline_jobs:
        job = meta.jobs.get(job_id)
        if job is None or job.pipeline != name:
            problems.append(f"job index of pipeline {name}: job {job_id} does not exist or is another pipeline's")


def _check_job(meta: _Metadata, job: JobRecord, problems: list[str]) -> None:
    name = f"job {job.id}"
    if job.pipeline and job.pipeline not in meta.pipelines:
        problems.append(f"{name}: pipeline {job.pipeline} does not exist")
    if job.pipeline and (job.pipeline, job.id) not in meta.pipeline_jobs:
        problems.append(f"{name}: missing from the job index of pipeline {job.pipeline}")
    if job.output_repo not in meta.repos:
        problems.append(f"{name}: output repo {job.output_repo} does not exist")
    output = meta.commit(job.output_repo, job.output_commit) if job.output_commit else None
    if job.output_commit and output is None:
        problems.append(f"{name}: output commit {job.output_repo}/{job.output_commit} does not exist")
    for given in job.inputs:
        if meta.commit(given.repo, given.commit) is None:
            problems.append(f"{name}: input commit {given.repo}/{given.commit} does not exist")
    for index, pod in enumerate(job.pods):
        if pod.commit and meta.commit(job.output_repo, pod.commit) is None:
            problems.append(f"{name}: pod {index}'s commit {job.output_repo}/{pod.commit} does not exist")
    if job.state.done and job.finished is None:
        problems.append(f"{name}: {job.state.name} but has no finish time")
    if job.state in (JobState.SUCCESS, JobState.EMPTY) and output is not None and output.is_open:
        problems.append(f"{name}: {job.state.name} but its output commit is still open")
    if not job.state.done and job.parent and job.parent not in meta.jobs:
        problems.append(f"{name}: parent job {job.parent} does not exist")


# -- the entry points -------------------------------------------------------------------


async def check(kv: KV, blocks: BlockStore, *, verify_data: bool = False) -> list[str]:
    """Every inconsistency found in the stores, one line each; empty means consistent.

    With verify_data, every block is also read and compared with its hash.
    """
    problems: list[str] = []
    meta = await _read(kv, problems)
    _check_repos(meta, problems)
    _check_branches(meta, problems)
    for commit in meta.commits.values():
        _check_commit(meta, commit, problems)
    _check_pending(meta, problems)
    await _check_data(meta, _Trees(blocks, problems, verify_data=verify_data), problems)
    _check_pipelines(meta, problems)
    for job in meta.jobs.values():
        _check_job(meta, job, problems)
    return problems


async def check_stores(config: PachdConfig, *, verify_data: bool = False) -> list[str]:
    """Opens the stores of `config` as pachd would, checks them, closes them."""
    return (await _check_stores(config, verify_data=verify_data))[0]


async def _check_stores(config: PachdConfig, *, verify_data: bool) -> tuple[list[str], tuple[int, int]]:
    """The problems, and how many blocks (and bytes) no commit references."""
    kv = await open_kv(config)
    try:
        blocks = await open_block_store(config)
        try:
            problems = await check(kv, blocks, verify_data=verify_data)
            return problems, await unreferenced(kv, blocks)
        finally:
            await blocks.close()
    finally:
        await kv.close()


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m pachd.check",
        description="Check a (stopped) pachd's metadata for inconsistencies; exit 1 if any are found. "
                    "The block store is named by pachd's own flags and environment (--storage local, gcs, s3 "
                    "or azure, with --gcs-bucket, --s3-bucket, --s3-endpoint, --azure-container, ...).")
    parser.add_argument("--data-dir", required=True, help="pachd's data dir (its --data-dir)")
    parser.add_argument("--etcd", default="", help="HOST:PORT of etcd, if pachd keeps its metadata there")
    parser.add_argument("--verify-data", action="store_true", help="also read every block and check its hash")
    return parser


def _config(args: argparse.Namespace, store_flags: Sequence[str]) -> PachdConfig:
    """The stores' settings as pachd reads them: the store flags, then the environment."""
    flags = ["--data-dir", args.data_dir, *store_flags]
    if args.etcd:
        flags += ["--etcd", args.etcd]
    return pachd_config.load(flags)


def main(argv: Sequence[str] | None = None) -> int:
    args, store_flags = _parser().parse_known_args(argv)
    config = _config(args, store_flags)
    if not config.data_dir.is_dir() and not (config.uses_etcd and config.storage != "local"):
        print(f"pachd.check: {config.data_dir} is not a directory; give pachd's --data-dir", file=sys.stderr)
        return 2
    try:
        problems, (loose, loose_bytes) = asyncio.run(_check_stores(config, verify_data=args.verify_data))
    except PachError as err:
        print(f"pachd.check: {err.message}", file=sys.stderr)
        return 2
    for problem in problems:
        print(problem)
    print(f"pachd.check: {loose} blocks ({loose_bytes} bytes) no commit references"
          + ("; `pachctl garbage-collect` reclaims them" if loose else ""), file=sys.stderr)
    print(f"pachd.check: {len(problems) or 'no'} problem{'' if len(problems) == 1 else 's'} found",
          file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    raise SystemExit(main())
