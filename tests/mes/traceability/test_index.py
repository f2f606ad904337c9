"""The in-memory index follows the read model: changes reach it only once their transaction commits,
and a rebuild from the tables gives the same graph."""
from __future__ import annotations

from mes.traceability import index, recorder
from mes.traceability.graph import GenealogyIndex
from mes.traceability.models import LOT


async def test_changes_reach_the_index_after_commit_only(system):
    from mes import traceability
    service = traceability.service
    async with service.unit_of_work() as uow:
        graph = await index.genealogy(uow)
        a = await recorder.node(uow, LOT, "lot-a", number="A")
        b = await recorder.node(uow, LOT, "lot-b", number="B")
        recorder.edge(uow, a, b, "split")
        await uow.rollback()
    assert graph.edges == 0
    async with service.unit_of_work() as uow:
        a = await recorder.node(uow, LOT, "lot-a", number="A")
        b = await recorder.node(uow, LOT, "lot-b", number="B")
        c = await recorder.node(uow, LOT, "lot-c", number="C")
        recorder.edge(uow, a, b, "split")
        recorder.edge(uow, b, c, "consume")
        assert graph.forward(a.id).nodes == {a.id}  # not committed yet
    assert graph.forward(a.id).nodes == {a.id, b.id, c.id}
    assert graph.upstream_path(a.id, c.id) == [a.id, b.id, c.id]
    async with service.unit_of_work() as uow:
        rebuilt = (await index.rebuild(uow)).index
    assert rebuilt is not graph and rebuilt.backward(c.id).nodes == {a.id, b.id, c.id}


def test_walks_are_depth_limited_and_stop_on_cycles():
    graph = GenealogyIndex()
    for parent, child in ((1, 2), (2, 3), (3, 4), (4, 2), (1, 5)):  # 2 -> 3 -> 4 -> 2 is a cycle
        graph.add_edge(parent, child)
    assert [sorted(level) for level in graph.forward(1).levels] == [[1], [2, 5], [3], [4]]
    assert graph.forward(1, depth=1).nodes == {1, 2, 5}
    assert graph.backward(2).nodes == {1, 2, 3, 4}
    assert graph.upstream_path(4, 3) == [4, 2, 3] and graph.upstream_path(5, 1) is None
    assert graph.forward(99).nodes == {99} and graph.upstream_path(1, 99) is None
    graph.add_edge(1, 2)  # a second edge between two nodes adds nothing
    assert graph.edges == 5
