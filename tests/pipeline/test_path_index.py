"""The yes/no questions the graph asks a PathIndex (10,000 stages: no list per dep)
say what the list they skip would say."""

from hypothesis import given
from hypothesis import strategies as st

from pivot.pipeline.dag import PathIndex

_PART = st.sampled_from(["a", "b", "a.txt", "ab"])
_PATH = st.lists(_PART, min_size=1, max_size=4).map("/".join)


@given(st.lists(_PATH, max_size=8), _PATH)
def test_has_related_and_nests_agree_with_related(declared: list[str], path: str) -> None:
    index = PathIndex({p: [f"stage{i}"] for i, p in enumerate(declared)})
    related = index.related(path)
    assert index.has_related(path) == bool(related)
    assert index.nests(path) == any(r != path for r in related)


def test_examples() -> None:
    index = PathIndex({"out/a.txt": ["s1"], "data": ["s2"]})
    assert index.has_related("out/a.txt") and not index.nests("out/a.txt")
    assert index.has_related("out") and index.nests("out")  # holds out/a.txt
    assert index.has_related("data/x/y.csv") and index.nests("data/x/y.csv")  # inside data
    assert not index.has_related("out/b.txt") and not index.nests("out/b.txt")
    assert not index.has_related("outs") and not index.has_related("dat")
