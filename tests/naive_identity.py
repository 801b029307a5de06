"""Plain reference for identity resolution: breadth-first search over a dict of neighbour sets."""
from collections import defaultdict, deque


def resolve_reference(pairs, max_degree=None, key=lambda x: x):
    """{id: (customer_key, component_size)} for a list of (left, right) id pairs."""
    neighbours = defaultdict(set)
    for a, b in pairs:
        neighbours[a]
        neighbours[b]
        if a != b:
            neighbours[a].add(b)
            neighbours[b].add(a)
    cut = set()
    if max_degree is not None:
        cut = {i for i, ns in neighbours.items() if len(ns) > max_degree}
    out = {}
    for start in neighbours:
        if start in out:
            continue
        seen = {start}
        queue = deque([start])
        while queue:
            x = queue.popleft()
            if x in cut:
                continue
            for y in neighbours[x]:
                if y not in seen and y not in cut:
                    seen.add(y)
                    queue.append(y)
        smallest = min(seen, key=key)
        for x in seen:
            out[x] = (smallest, len(seen))
    return out, {i: len(ns) for i, ns in neighbours.items()}
