"""The distributed search (``check --cluster``) on a local 2-worker Ray cluster equals the single-process one.

One Ray instance (2 CPUs, loopback) and one pool of 2 partition actors serve the whole
module; each search is compared with :func:`explore_vectorized` (states, transitions,
depth, verdicts, shortest lengths) and with PROTOCOL.md's figures. The partition logic
itself is also checked in-process with 3 partitions (no Ray).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any, Iterator

import numpy as np
import pytest

from deferral.checks.explicit.cluster import Partition, owner_of
from deferral.checks.explicit.limits import peak_rss_bytes
from deferral.checks.explicit.vectorized import explore_vectorized
from deferral.checks.results import SearchResult
from deferral.model import PUBLISHED, REFERENCE, Bounds
from deferral.model.concrete import Model
from deferral.model.expected import REFERENCE_COUNTS, SMALL, VERDICTS

# PROTOCOL.md's table and verdicts, as the model states them
TABLE = {b: REFERENCE_COUNTS[b] for b in SMALL}
#: overflow-drop's counterexample is 7 steps deep at 2,2,1,1 (1.2M orbits): both searches stop
#: at this many states, well past depth 7 (the verdict is then final, the rest unknown)
OVERFLOW_MAX_STATES = 20_000


@pytest.fixture(scope="module")
def cluster() -> Iterator[Any]:
    ray = pytest.importorskip("ray")
    from deferral.checks.explicit.cluster import Cluster

    # 4 logical CPUs: room for the pool's 2 actors and for the 2 that the CLI test's own
    # search starts (each search runs on 2 workers; Ray's CPUs are a count, not a pinning)
    ray.init(num_cpus=4, include_dashboard=False, log_to_driver=False, configure_logging=False,
             _node_ip_address="127.0.0.1", object_store_memory=256 * 1024 * 1024)
    pool = Cluster("local:2")
    try:
        yield pool
    finally:
        pool.close()
        ray.shutdown()


def summary(result: SearchResult) -> tuple[Any, ...]:
    return (result.states, result.transitions, result.depth, result.complete, result.stopped_by,
            [(o.name, o.status, o.length) for o in result.outcomes])


def assert_path_ends_in_violation(model: Model, result: SearchResult) -> None:
    """Each violated invariant's path replays step by step and ends in a violating state."""
    for o in result.outcomes:
        if o.status != "violated" or o.kind != "invariant":
            continue
        assert o.path is not None and o.path[0][1] == model.initial
        for (_, before), (action, after) in zip(o.path, o.path[1:]):
            assert action is not None and model.apply(before, action) == after
        assert any(v.prop == o.name for v in model.violations(o.path[-1][1]))


@pytest.mark.parametrize("bounds", list(TABLE), ids=lambda b: "N{}V{}F{}Q{}".format(*b))
def test_published_table(cluster: Any, bounds: tuple[int, int, int, int]) -> None:
    result = cluster.search(REFERENCE, Bounds(*bounds))
    assert result.states == TABLE[bounds][1]
    assert result.engine == "cluster" and result.workers == 2
    assert summary(result) == summary(explore_vectorized(REFERENCE, Bounds(*bounds), workers=1))
    assert [o.status for o in result.outcomes] == ["holds", "holds"]
    assert sum(result.stats["partition_states"]) == result.states
    assert min(result.stats["partition_states"]) > 0  # both partitions own states
    assert result.stats["remote_bytes"] > 0  # successors really crossed partitions


def test_without_symmetry(cluster: Any) -> None:
    result = cluster.search(REFERENCE, Bounds(2, 1, 1, 1), symmetry=False)
    assert result.states == TABLE[(2, 1, 1, 1)][0]
    assert summary(result) == summary(explore_vectorized(REFERENCE, Bounds(2, 1, 1, 1), symmetry=False,
                                                         workers=1))


@pytest.mark.parametrize("name", list(VERDICTS))
def test_published_variants(cluster: Any, name: str) -> None:
    bounds, prop, length = VERDICTS[name]
    limit = OVERFLOW_MAX_STATES if name == "overflow-drop" else None
    protocol, b = PUBLISHED[name], Bounds(*bounds)
    result = cluster.search(protocol, b, max_states=limit)
    assert summary(result) == summary(explore_vectorized(protocol, b, max_states=limit, workers=1))
    outcome = result.outcome(prop)
    assert outcome.status == "violated" and outcome.path is not None
    if length is not None:
        assert outcome.length == length
    assert_path_ends_in_violation(Model(protocol, b), result)


def test_max_states_cuts_exactly_and_is_unknown(cluster: Any) -> None:
    result = cluster.search(REFERENCE, Bounds(2, 1, 1, 1), max_states=1000)
    assert result.states == 1000 and result.stopped_by == "max-states" and not result.complete
    assert [o.status for o in result.outcomes] == ["unknown", "unknown"] and result.exit_code == 3


def test_cli_json_and_trace(cluster: Any, cli: Any, tmp_path: Path) -> None:
    trace = tmp_path / "cex.json"
    run = cli("check", "--cluster", "local:2", "--variant", "reload-no-drain", "--json",
              "--trace-out", str(trace))
    assert run.code == 1
    data = json.loads(run.out)
    assert data["engine"] == "cluster" and data["workers"] == 2 and data["states"] == 4242
    assert [(p["name"], p["status"], p["length"]) for p in data["properties"]] == [
        ("no_stale_translation", "violated", 5), ("shootdowns_can_complete", "holds", None)]
    assert [lv["depth"] for lv in data["stats"]["levels"]][:3] == [1, 2, 3]
    assert cli("replay", str(trace)).code == 0  # the expected violation, replayed


def test_bad_cluster_flags_exit_2(cli: Any) -> None:
    run = cli("check", "--cluster", "local:0")
    assert run.code == 2 and "local:K" in run.err and len(run.err.strip().splitlines()) == 1
    run = cli("check", "--cluster", "local:2", "--engine", "plain")
    assert run.code == 2 and "--cluster" in run.err


def test_missing_ray_is_bad_input(cli: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "ray", None)  # import ray -> ImportError
    run = cli("check", "--cluster", "local:2")
    assert run.code == 2 and "deferral[cluster]" in run.err


def test_a_variant_that_treats_a_vcpu_differently_is_refused_before_the_cluster_starts(cli, tmp_path: Path) -> None:
    """--cluster searched a variant up to symmetry with no guard: VCPU 0 skipping its IPI flush 'held'."""
    from tests.checks.explicit.test_symmetry_guard import DEEP_ASYMMETRY_FILE

    variant = tmp_path / "vcpu0.py"
    variant.write_text(DEEP_ASYMMETRY_FILE)
    run = cli("check", "--cluster", "local:2", "--variant-file", str(variant))
    assert run.code == 2 and "does not treat its VCPUs alike" in run.err and "--no-symmetry" in run.err


def test_plain_check_does_not_import_ray() -> None:
    code = ("import sys\nfrom deferral.cli.main import main\nrc = main(['check', '--json'])\n"
            "assert 'ray' not in sys.modules, 'ray imported'\nsys.exit(rc)")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["engine"] != "cluster"


@pytest.mark.parametrize("fused", [False, True], ids=["numpy", "fused"])
def test_partitions_in_process_equal_single_search(fused: bool, monkeypatch: pytest.MonkeyPatch) -> None:
    """The partition logic alone (3 partitions, routing by hand, no Ray) counts what one search
    does, by the numpy kernels or the fused C loop, over levels of many chunks; with runs of
    many blocks, every AG EF edge routed to its target's owner is stored."""
    from deferral.checks.explicit import cluster, visited

    monkeypatch.setattr(visited, "MIN_BLOCK", 16)  # runs of many blocks (a lookup needs sorted queries)
    monkeypatch.setattr(cluster, "CHUNK_ROWS", 64)  # levels of many chunks (each on reused buffers)
    if not fused:
        monkeypatch.setenv("DEFERRAL_JIT", "0")  # no compiled loop at all, not even from the cache
    bounds, parts = Bounds(2, 1, 1, 1), 3
    protocol = PUBLISHED["remote-no-drain"]
    ps = [Partition(protocol, bounds, True, i, parts, fused_rows=1) for i in range(parts)]
    init = ps[0].packer.canonical_keys(ps[0].packer.rows_of([ps[0].model.initial]))
    home = int(owner_of(init, ps[0].packer.n_words, parts)[0])
    for i, p in enumerate(ps):
        p.start(init if i == home else init[:0])
        p.commit(1 << 30)
    states, transitions, depth, first_bad, edges = 1, 0, 0, None, 0
    while True:
        out = [p.expand() for p in ps]
        if fused and ps[0].expander.fused() is None:
            pytest.skip("no fused C loop here (no C compiler, or DEFERRAL_JIT=0)")
        for i, p in enumerate(ps):
            p.receive(*[out[q][i] for q in range(parts)])
            edges += sum(out[q][i]["edge_dst"].shape[0] for q in range(parts))
        reports = [p.commit(1 << 30) for p in ps]
        transitions += sum(o[parts]["successors"] for o in out)
        new = sum(r["new"] for r in reports)
        if not new:
            break
        depth += 1
        states += new
        bad = [r["bad"]["no_stale_translation"] for r in reports if "no_stale_translation" in r["bad"]]
        if bad and first_bad is None:
            first_bad = depth
    single = explore_vectorized(protocol, bounds, workers=1)
    assert (states, transitions, depth) == (single.states, single.transitions, single.depth)
    assert first_bad == single.outcome("no_stale_translation").length
    assert [p.count for p in ps] == [len(p.visited) for p in ps]
    assert (min(p.fused_chunks for p in ps) > 0) == fused
    assert edges > 0 and sum(d.shape[0] for p in ps for d in p.rev_dst) == edges
    keys = np.concatenate([k for p in ps for k, _ in p.visited.runs()])
    assert np.unique(keys).shape[0] == states  # the partitions are disjoint
    figures = ps[0].figures()  # this process's VmHWM, not ru_maxrss (wrong in a child of a big process)
    assert 0 < figures["peak_rss_bytes"] <= peak_rss_bytes()


def test_workers_run_the_fused_loop(cluster: Any) -> None:
    """Levels past ``fused_rows`` states run the fused C loop in every worker: same results."""
    from deferral.checks.explicit import cbuild

    if cbuild.compiler() is None:
        pytest.skip("no C compiler: the workers keep the numpy path")
    b = Bounds(2, 1, 1, 1)
    result = cluster.search(REFERENCE, b, fused_rows=1)
    assert summary(result) == summary(explore_vectorized(REFERENCE, b, workers=1))
    assert min(result.stats["partition_fused_chunks"]) > 0 and "notice" not in result.stats
    default = cluster.search(REFERENCE, Bounds(1, 1, 1, 1))  # tiny levels: the numpy path
    assert default.stats["partition_fused_chunks"] == [0, 0]


def test_variant_file_travels_to_the_workers(cluster: Any) -> None:
    """A user's variant (functions of a file no worker can import) is pickled by value."""
    from deferral.model.variants import load_variant_file

    protocol = load_variant_file(Path(__file__).resolve().parents[3] / "examples" / "drain_zaps.py")
    b = Bounds(2, 1, 1, 1)
    assert summary(cluster.search(protocol, b)) == summary(explore_vectorized(protocol, b, workers=1))


def test_time_limit_is_unknown_not_holds(cluster: Any) -> None:
    result = cluster.search(REFERENCE, Bounds(2, 1, 2, 2), time_limit=1e-6)
    assert result.stopped_by == "time-limit" and not result.complete
    # the level already under way at the limit is counted: the workers hold what is reported
    assert sum(result.stats["partition_states"]) == result.states < TABLE[(2, 1, 2, 2)][1]
    assert [o.status for o in result.outcomes] == ["unknown", "unknown"] and result.exit_code == 3


def test_workers_that_cannot_start_give_an_error_not_a_hang(cluster: Any,
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    from deferral.checks.explicit import cluster as module

    monkeypatch.setattr(module, "STARTUP_TIMEOUT_S", 2.0)
    with pytest.raises(module.ClusterUnavailable, match="could not start"):
        module.Cluster("local:2", partitions=5)  # 5 x 0.8 CPU; the pool holds 2 of the 4


def test_invariants_only_stop_once_all_are_violated(cluster: Any) -> None:
    """``check --property`` of invariants only (until_all_violated) stops after the first violating
    level on the cluster too: the same verdict and shortest length as the single search, fewer states
    than the whole space."""
    from dataclasses import replace

    from deferral.checks.results import ALL_VIOLATED

    bug = PUBLISHED["reload-no-drain"]
    protocol = replace(bug, properties=tuple(p for p in bug.properties if p.kind == "invariant"))
    b = Bounds(2, 1, 1, 1)
    result = cluster.search(protocol, b, until_all_violated=True)
    single = explore_vectorized(protocol, b, workers=1, until_all_violated=True)
    assert result.stopped_by == single.stopped_by == ALL_VIOLATED
    assert [(o.name, o.status, o.length) for o in result.outcomes] == [
        (o.name, o.status, o.length) for o in single.outcomes] == [("no_stale_translation", "violated", 5)]
    assert result.states < 4242 and result.exit_code == 1
    assert_path_ends_in_violation(Model(protocol, b), result)
