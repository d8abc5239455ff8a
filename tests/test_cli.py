"""The command line: outputs, conventions, honest cost, and what bad input and damaged caches do
(the cases of the reliability probe, ``shared/tools/reliability_probe.sh``, as two tables: every bad
input refused with a message naming it and no traceback; every damaged cache detected, reported in
one line, rebuilt, with the metrics of a clean run)."""
import contextlib
import gc
import io
import json
import os
import re
import shutil
import socket

import numpy as np
import pytest

from rerank_lab.cli import main
from tests.support import write_beir


def _json(capsys):
    return json.loads(capsys.readouterr().out)


def test_evaluate_json_has_metrics_conventions_and_both_clocks(capsys):
    assert main(["evaluate", "toy", "bm25", "--json"]) == 0
    record = _json(capsys)
    for key in ("dataset", "pipeline", "split", "queries", "ndcg@10", "recall@100", "judged@10", "empty_rankings",
                "seconds", "model_seconds", "cpu", "stages"):
        assert key in record
    assert record["queries"] == 5 and 0 < record["ndcg@10"] <= 1
    assert {"seconds", "model_seconds", "model_median_query_seconds"} <= set(record["stages"][0])


def test_empty_rankings_convention_on_nfcorpus(capsys, tmp_path):
    import pytrec_eval

    from rerank_lab import Run, load_dataset

    saved = tmp_path / "bm25.trec"
    assert main(["evaluate", "nfcorpus", "bm25", "--json", "--save-run", str(saved)]) == 0
    zero = _json(capsys)
    assert main(["evaluate", "nfcorpus", "bm25", "--json", "--empty-rankings", "skip"]) == 0
    skip = _json(capsys)
    assert zero["empty_rankings"] == skip["empty_rankings"] == 15 and "judged@10" in zero
    assert zero["queries"] == skip["queries"] + 15 and zero["ndcg@10"] < skip["ndcg@10"]
    qrels = load_dataset("nfcorpus").qrels
    theirs = pytrec_eval.RelevanceEvaluator(qrels, {"ndcg_cut.10"}).evaluate(Run.read_trec(saved).to_dict())
    mean = sum(v["ndcg_cut_10"] for v in theirs.values()) / len(theirs)
    assert skip["ndcg@10"] == pytest.approx(mean, abs=5e-4)


@pytest.mark.parametrize("value", ["0", "-3", "many"])
def test_bad_max_queries_is_refused_with_a_clear_message(capsys, value):
    with pytest.raises(SystemExit) as exit_:
        main(["evaluate", "toy", "bm25", "--max-queries", value])
    assert exit_.value.code == 2
    err = capsys.readouterr().err
    assert "--max-queries" in err and ("positive" in err or "whole number" in err) and "Traceback" not in err


def test_bad_input_gives_clear_error(capsys):
    assert main(["evaluate", "toy", "bm25>>nope"]) == 2
    assert "unknown stage 'nope'" in capsys.readouterr().err
    assert main(["evaluate", "toy", "bm25", "--split", "dev"]) == 2
    assert "no 'dev' split" in capsys.readouterr().err


def test_a_cached_rerun_reports_the_same_model_latency_and_far_less_wall_time(capsys, monkeypatch, tmp_path):
    monkeypatch.setenv("RERANK_LAB_CACHE", str(tmp_path))  # cold means cold: no scores from earlier tests
    assert main(["evaluate", "toy", "bm25>>ce", "--json"]) == 0
    cold = _json(capsys)["stages"][-1]
    assert main(["evaluate", "toy", "bm25>>ce", "--json"]) == 0
    warm = _json(capsys)["stages"][-1]
    assert warm["cache_hits"] == cold["items_scored"] and cold.get("cache_hits", 0) == 0
    assert cold["model_seconds"] / 1.5 <= warm["model_seconds"] <= cold["model_seconds"] * 1.5
    assert warm["seconds"] < cold["seconds"] / 2


def test_a_damaged_score_cache_is_moved_aside_and_recomputed(capsys):
    from rerank_lab.components.stores import KeyValueStore, cache_dir

    assert main(["evaluate", "toy", "bm25>>ce", "--json"]) == 0
    first = _json(capsys)
    store = cache_dir("scores") / "store.sqlite"
    for opened in KeyValueStore._open.values():
        opened.close_connection()
    for suffix in ("-wal", "-shm"):
        if os.path.exists(f"{store}{suffix}"):
            os.remove(f"{store}{suffix}")
    store.write_bytes(b"database disk image is malformed" * 64)
    assert main(["evaluate", "toy", "bm25>>ce", "--json"]) == 0
    captured = capsys.readouterr()
    again = json.loads(captured.out)
    assert "damaged cache" in captured.err and "Traceback" not in captured.err
    assert again["ndcg@10"] == first["ndcg@10"]  # recomputed, not poisoned
    assert any(p.name.startswith("store.sqlite.damaged-") for p in store.parent.iterdir())


def test_lift_writes_chart_table_and_runs_with_normal_permissions(tmp_path, capsys):
    assert main(["lift", "toy", "--pipelines", "bm25", "bm25%3", "--out", str(tmp_path)]) == 0
    assert (tmp_path / "lift.png").stat().st_size > 1000
    assert "| bm25 |" in (tmp_path / "results.md").read_text()
    manifest = json.loads((tmp_path / "toy" / "manifest.json").read_text())
    assert manifest["dataset"]["name"] == "toy" and (tmp_path / "toy" / "runs" / "bm25.trec").exists()
    umask = os.umask(0)
    os.umask(umask)
    for path in [tmp_path / "lift.png", tmp_path / "results.md", tmp_path / "toy" / "manifest.json",
                 tmp_path / "toy" / "runs" / "bm25.trec"]:
        assert path.stat().st_mode & 0o777 == 0o666 & ~umask, path
    assert "plan:" in capsys.readouterr().err


def test_sweep_json_has_a_row_per_depth(capsys, tmp_path):
    assert main(["sweep", "toy", "bm25>>maxsim", "--depths", "2", "4", "8", "--json", "--out", str(tmp_path)]) == 0
    record = _json(capsys)
    assert [r["depth"] for r in record["rows"]] == [2, 4, 8]
    assert all({"ndcg@10", "model_seconds_per_query", "peak"} <= set(r) for r in record["rows"])
    assert sum(r["peak"] for r in record["rows"]) == 1 and os.path.exists(record["plot"])


def test_the_main_job_draws_the_cross_encoder_and_notebook_01_every_lab_reranker():
    from rerank_lab.cli import ALL_LIFT_RERANKERS, lift_pipelines

    assert list(lift_pipelines()) == ["bm25", "dense", "hybrid", "hybrid>>ce"]
    assert list(lift_pipelines(rerankers=ALL_LIFT_RERANKERS))[3:] == ["hybrid>>maxsim", "hybrid>>colbert", "hybrid>>ce"]
    with pytest.raises(SystemExit, match="not both"):
        main(["lift", "toy", "--pipelines", "bm25", "--rerankers", "ce"])


# ----------------------------------------------------------------------------- bad input, one table

DOCS = [json.dumps({"_id": f"d{i}", "title": f"title {i}", "text": f"text about topic {i} and more"}) for i in range(6)]
QUERIES = [json.dumps({"_id": "q1", "text": "topic 1"}), json.dumps({"_id": "q2", "text": "topic 2"})]
QRELS = [("q1", "d1", 1), ("q2", "d2", 1)]


def _variant(root, name, corpus=DOCS, queries=QUERIES, qrels=QRELS, damage=None):
    folder = write_beir(root / name, corpus, queries, qrels)
    if damage:
        path, old, new = damage
        (folder / path).write_bytes((folder / path).read_bytes().replace(old, new, 1))


@pytest.fixture(scope="module")
def bad_root(tmp_path_factory):
    """A data root holding a small good dataset ("tiny") and broken copies of it, and a files folder."""
    root = tmp_path_factory.mktemp("bad-data")
    _variant(root, "tiny")
    _variant(root, "nonutf8-corpus", damage=("corpus.jsonl", b"text about topic 3", b"text \xff\xfe topic 3"))
    _variant(root, "nonutf8-queries", damage=("queries.jsonl", b"topic 2", b"\xe9t\xe9 2"))
    _variant(root, "nonutf8-qrels", damage=("qrels/test.tsv", b"q2\t", b"q2\xff\t"))
    _variant(root, "empty-corpus", corpus=[])
    _variant(root, "corrupt-corpus-line", corpus=DOCS[:3] + ['{"_id": "cut", "text": "a line cut mid-wr'])
    _variant(root, "dup-docid", corpus=DOCS + DOCS[:1])
    files = root / "files"
    files.mkdir()
    (files / "a-file").write_text("a regular file\n")
    (files / "a-dir").mkdir()
    return root


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


# (case, arguments, environment, what the message must name); {files} is the files folder
BAD_INPUTS = [
    ("unknown dataset", ["evaluate", "nosuchdataset", "bm25"], {}, "nosuchdataset"),
    ("dataset name with a path", ["evaluate", "../tiny", "bm25"], {}, r"'\.\./tiny' is not a dataset name"),
    ("unknown split", ["evaluate", "tiny", "bm25", "--split", "nosplit"], {}, "no 'nosplit' split"),
    ("split with a path", ["evaluate", "tiny", "bm25", "--split", "../../x"], {}, r"split '\.\./\.\./x'"),
    ("unknown stage", ["evaluate", "tiny", "bm25>>nosuch"], {}, "unknown stage 'nosuch'"),
    ("trailing arrow", ["evaluate", "tiny", "bm25>>"], {}, "pipeline 'bm25>>'"),
    ("metric cut-off 0", ["evaluate", "tiny", "bm25", "--metrics", "p@0"], {}, "p@0"),
    ("non-UTF-8 corpus", ["evaluate", "nonutf8-corpus", "bm25"], {}, r"nonutf8-corpus/corpus\.jsonl:4: not UTF-8"),
    ("non-UTF-8 queries", ["evaluate", "nonutf8-queries", "bm25"], {}, r"nonutf8-queries/queries\.jsonl:2: not UTF-8"),
    ("non-UTF-8 qrels", ["evaluate", "nonutf8-qrels", "bm25"], {}, r"nonutf8-qrels/qrels/test\.tsv:3: not UTF-8"),
    ("empty corpus", ["evaluate", "empty-corpus", "bm25"], {}, r"empty-corpus/corpus\.jsonl holds no documents"),
    ("corrupt corpus line", ["evaluate", "corrupt-corpus-line", "bm25"], {}, r"corpus\.jsonl:4: malformed JSON"),
    ("duplicate document id", ["evaluate", "dup-docid", "bm25"], {}, r"corpus\.jsonl:7: duplicate document id 'd0'"),
    ("--save-run under a file", ["evaluate", "tiny", "bm25", "--save-run", "{files}/a-file/run.trec"], {},
     "a-file is a file, not a folder"),
    ("--save-run onto a folder", ["evaluate", "tiny", "bm25", "--save-run", "{files}/a-dir"], {},
     "a-dir: it is a folder"),
    ("lift --out under a file", ["lift", "tiny", "--pipelines", "bm25", "--out", "{files}/a-file/lift"], {},
     "a-file is a file, not a folder"),
    ("sweep --out under a file", ["sweep", "tiny", "bm25>>maxsim", "--depths", "5", "--out", "{files}/a-file/sweep"],
     {}, "a-file is a file, not a folder"),
    ("cache root is a file", ["evaluate", "tiny", "bm25"], {"RERANK_LAB_CACHE": "{files}/a-file"},
     "a-file: it is a file.*RERANK_LAB_CACHE"),
    ("malformed Ray address", ["evaluate", "tiny", "bm25", "--ray", "not an address"], {},
     "'not an address' is not an address"),
    ("unreachable Ray address, BM25 only", ["evaluate", "tiny", "bm25", "--ray", "nosuchhost.invalid:6379"], {},
     "cannot reach a Ray cluster at 'nosuchhost.invalid:6379'"),
    ("refused Ray address, dense", ["evaluate", "tiny", "dense", "--ray", "127.0.0.1:{port}"], {},
     "cannot reach a Ray cluster at '127.0.0.1:"),
    ("registered module missing", ["evaluate", "tiny", "bm25>>mine"], {"register": "no_such_module_x:mine"},
     "no module 'no_such_module_x'"),
    ("registered attribute missing", ["evaluate", "tiny", "bm25>>mine"], {"register": "tests.support:no_such"},
     "'tests.support' has no 'no_such'"),
]


@pytest.mark.parametrize("case, argv, env, needle", BAD_INPUTS, ids=[c[0] for c in BAD_INPUTS])
def test_bad_input_is_refused_naming_it_without_a_traceback(case, argv, env, needle, bad_root, tmp_path,
                                                             monkeypatch, capsys):
    from rerank_lab.rerankers import REGISTRY, register

    fill = {"files": str(bad_root / "files"), "port": str(_closed_port())}
    monkeypatch.setenv("RERANK_LAB_DATA", str(bad_root))
    monkeypatch.setenv("RERANK_LAB_CACHE", str(tmp_path / "cache"))
    for key, value in env.items():
        if key == "register":
            monkeypatch.setitem(REGISTRY, "mine", None)  # the name is gone again after the test
            register("mine", value)
        else:
            monkeypatch.setenv(key, value.format(**fill))
    assert main([a.format(**fill) for a in argv]) == 2  # an exception here would be the traceback
    err = capsys.readouterr().err
    assert re.search(needle, err), err
    assert err.strip().splitlines()[-1].startswith("rerank-lab: error: ")


def test_a_registered_plain_function_reranks_and_a_factory_builds(bad_root, monkeypatch, capsys):
    from rerank_lab.rerankers import REGISTRY, RegistryError, load_reranker, register
    from tests.support import overlap

    monkeypatch.setenv("RERANK_LAB_DATA", str(bad_root))
    monkeypatch.setitem(REGISTRY, "overlap", None)  # the name is gone again after the test
    register("overlap", "tests.support:overlap")  # overlap(query, documents): a reranker, used as it is
    assert main(["evaluate", "tiny", "bm25>>overlap", "--json"]) == 0
    record = _json(capsys)
    assert record["stages"][-1]["stage"] == "overlap" and record["stages"][-1]["items_scored"] > 0
    assert load_reranker("overlap") is overlap
    register("overlap", "rerank_lab.rerankers.maxsim:ZeroShotMaxSim")  # a class: a factory, given the settings
    assert load_reranker("overlap", doc_maxlen=64).doc_maxlen == 64
    with pytest.raises(RegistryError, match="cannot build reranker 'overlap'.*nope"):
        load_reranker("overlap", nope=1)


# ----------------------------------------------------------------------------- damaged caches, one table

PIPELINES = {"bm25": "bm25", "dense": "dense", "maxsim": "bm25>>maxsim", "ce": "bm25>>ce"}
METRICS = ("ndcg@10", "recall@100", "mrr@10", "map")


@pytest.fixture(scope="module")
def clean_caches(tmp_path_factory):
    """Per pipeline: a cache a clean run filled, and that run's metrics."""
    from rerank_lab.components import openvino
    from rerank_lab.components.stores import KeyValueStore

    out = {}
    with pytest.MonkeyPatch.context() as patch:
        for kind, pipeline in PIPELINES.items():
            cache = tmp_path_factory.mktemp(f"clean-{kind}")
            patch.setenv("RERANK_LAB_CACHE", str(cache))
            openvino._COMPILED.clear()
            printed = io.StringIO()
            with contextlib.redirect_stdout(printed):
                assert main(["evaluate", "toy", pipeline, "--json"]) == 0
            record = json.loads(printed.getvalue())
            out[kind] = (cache, {m: record[m] for m in METRICS})
    for store in KeyValueStore._open.values():
        store.close_connection()
    return out


GARBAGE = b"\xde\xad\xbe\xef not a cache file " * 64


def _damage(path, how):
    size = path.stat().st_size
    if how == "delete":
        path.unlink()
    elif how == "truncate":  # a full disk, or a kill during a write that was not atomic
        os.truncate(path, size // 2)
    elif how == "garbage":
        path.write_bytes((GARBAGE * (size // len(GARBAGE) + 1))[:max(size, 64)])
    elif how == "payload":  # the middle third overwritten, the header intact: bit rot, a bad copy
        with open(path, "r+b") as fh:
            fh.seek(size // 3)
            fh.write(b"A" * (size // 3))
    elif how == "short-array":  # a valid array of other rows (a stale or foreign file)
        np.save(path, np.load(path)[:2].copy())
    elif how == "foreign":  # valid JSON of the wrong shape
        path.write_text('{"unexpected": 1}\n')


# (pipeline, cache file (glob under the cache root), damage)
DAMAGED = [
    ("bm25", "bm25/*/data.csc.index.npy", "payload"),
    ("bm25", "bm25/*/data.csc.index.npy", "truncate"),
    ("bm25", "bm25/*/indices.csc.index.npy", "delete"),
    ("bm25", "bm25/*/vocab.index.json", "garbage"),
    ("bm25", "bm25/*/done", "delete"),
    ("dense", "embeddings/dense-*/*.npy", "payload"),
    ("dense", "embeddings/dense-*/*.npy", "short-array"),
    ("dense", "embeddings/dense-*/*.npy", "truncate"),
    ("dense", "embeddings/dense-*/*.index.json", "foreign"),
    ("dense", "embeddings/dense-*/*.index.json", "garbage"),
    ("dense", "openvino/*/model.bin", "truncate"),
    ("maxsim", "embeddings/tokens-*/*.npy", "payload"),
    ("maxsim", "embeddings/tokens-*/*.npy", "delete"),
    ("maxsim", "embeddings/tokens-*/*.index.json", "foreign"),
    ("ce", "scores/store.sqlite", "garbage"),
]


@pytest.mark.parametrize("kind, target, how", DAMAGED, ids=[f"{k}-{t.split('/')[-1]}-{h}" for k, t, h in DAMAGED])
def test_a_damaged_cache_is_reported_in_one_line_rebuilt_and_gives_the_clean_metrics(kind, target, how, clean_caches,
                                                                                     tmp_path, monkeypatch, capsys):
    from rerank_lab.components import openvino

    clean, expected = clean_caches[kind]
    cache = tmp_path / "cache"
    shutil.copytree(clean, cache)
    (path,) = sorted(cache.glob(target))[:1]
    _damage(path, how)
    monkeypatch.setenv("RERANK_LAB_CACHE", str(cache))
    openvino._COMPILED.clear()  # compiled graphs are kept per process: read this cache's
    gc.collect()
    assert main(["evaluate", "toy", PIPELINES[kind], "--json"]) == 0
    captured = capsys.readouterr()
    record = json.loads(captured.out)
    assert {m: record[m] for m in METRICS} == expected
    reports = [line for line in captured.err.splitlines() if "damaged cache" in line]
    assert len(reports) == 1 and str(cache) in reports[0], captured.err
    assert "Traceback" not in captured.err
