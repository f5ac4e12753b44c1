"""The detect group's assignor: the whole stream to one member, the others stand by."""

from __future__ import annotations

from aiokafka.coordinator.protocol import ConsumerProtocolMemberMetadata

from pipeline.batches import SingleOwnerAssignor


class Cluster:
    def __init__(self, partitions: dict[str, set[int]]):
        self._partitions = partitions

    def partitions_for_topic(self, topic: str) -> set[int] | None:
        return self._partitions.get(topic)


def assignment(members: list[str], partitions: dict[str, set[int]]) -> dict[str, list]:
    metadata = {member: ConsumerProtocolMemberMetadata(0, sorted(partitions), b"") for member in members}
    assigned = SingleOwnerAssignor.assign(Cluster(partitions), metadata)
    return {member: [(topic, list(ps)) for topic, ps in assigned[member].assignment] for member in members}


def test_every_partition_goes_to_one_member_and_the_others_stand_by():
    got = assignment(["m-b", "m-a", "m-c"], {"pd.posts.enriched": {3, 0, 2, 1}})
    assert got == {"m-a": [("pd.posts.enriched", [0, 1, 2, 3])], "m-b": [], "m-c": []}


def test_when_the_owner_leaves_a_standby_takes_the_whole_stream():
    assert assignment(["m-b", "m-c"], {"t": {0, 1}}) == {"m-b": [("t", [0, 1])], "m-c": []}
