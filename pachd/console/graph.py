"""The DAG of repos and pipelines, and its layout.

Nodes are repos and pipelines; an edge runs from each input repo to the
pipeline, and from the pipeline to its output repo. The layout comes from
networkx: layers by topological generation, laid out by multipartite_layout,
so data flows left to right.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

import networkx as nx

WIDTH = 220.0
"""Pixels between two layers."""
HEIGHT = 110.0
"""Pixels between two nodes of one layer."""


@dataclass(frozen=True, slots=True)
class Placed:
    id: str  # "repo:<name>" or "pipeline:<name>"
    x: float
    y: float


def repo_node(name: str) -> str:
    return f"repo:{name}"


def pipeline_node(name: str) -> str:
    return f"pipeline:{name}"


def edges_of(repos: Iterable[str], pipelines: Mapping[str, Iterable[str]]) -> list[tuple[str, str]]:
    """Edges for these repos and pipelines (pipeline name -> its input repos)."""
    known = set(repos)
    edges = []
    for name, inputs in pipelines.items():
        edges += [(repo_node(repo), pipeline_node(name)) for repo in inputs if repo in known]
        if name in known:
            edges.append((pipeline_node(name), repo_node(name)))
    return edges


def layout(nodes: Iterable[str], edges: Iterable[tuple[str, str]]) -> list[Placed]:
    """Pixel positions (top-left at 0, 0) for every node."""
    graph = nx.DiGraph()
    graph.add_nodes_from(sorted(nodes))
    graph.add_edges_from(edges)
    if graph.number_of_nodes() == 0:
        return []
    if not nx.is_directed_acyclic_graph(graph):  # cannot happen through the API; lay it out flat
        layers = [list(graph.nodes)]
    else:
        layers = [sorted(layer) for layer in nx.topological_generations(graph)]
    for depth, layer in enumerate(layers):
        for node in layer:
            graph.nodes[node]["layer"] = depth
    tallest = max(len(layer) for layer in layers)
    positions = nx.multipartite_layout(graph, subset_key="layer", scale=1.0)
    xs = [float(p[0]) for p in positions.values()]
    ys = [float(p[1]) for p in positions.values()]
    span_x = (max(xs) - min(xs)) or 1.0
    span_y = (max(ys) - min(ys)) or 1.0
    width = WIDTH * (len(layers) - 1)
    height = HEIGHT * (tallest - 1)
    return [
        Placed(node, round((float(x) - min(xs)) / span_x * width, 1),
               round((float(y) - min(ys)) / span_y * height, 1) if height else 0.0)
        for node, (x, y) in sorted(positions.items())
    ]
