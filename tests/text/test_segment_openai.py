"""The openai backend, with the real `openai` client against a scripted OpenAI-compatible server on 127.0.0.1:
good answers, retries (429, 500, dropped connections, timeouts), invalid answers falling back to the rules with
their reason, the cache (a second run asks nothing), bounded concurrency, and the API key kept out of every log
line, cache file, metric and artifact."""

from __future__ import annotations

import json
import logging
import secrets
import time
from pathlib import Path

import pytest

from mate.cli import main
from mate.config import ConfigError, resolve
from mate.text.segment import SegmentError, SegmentStore, segment_captions
from mate.text.segment.llm import PROMPT_VERSION, OpenAISegmenter
from mate.text.segment.rules import split

from .fake_openai import DROP, ok, raw, sleep, status

TWO = "a person walks forward and then turns around."
TWO_ANSWER = ["a person walks forward", "turns around"]
AFTER = "the man sits down after walking to a chair"


def seg(fake, **kw) -> OpenAISegmenter:
    args = dict(api_key="sk-test-" + secrets.token_hex(8), base_url=fake.url, concurrency=2, max_retries=2,
                timeout=2.0, backoff=0.01, progress=False)
    args.update(kw)
    return OpenAISegmenter("test-model", **args)


def test_good_answer_is_validated_and_located(fake_llm):
    fake_llm.script[TWO] = [ok(TWO_ANSWER)]
    fake_llm.script[AFTER] = [ok(["walking to a chair", "the man sits down"])]
    s = seg(fake_llm, api_key="sk-abc")
    out = s.segment([TWO, AFTER])
    assert [o.texts for o in out] == [TWO_ANSWER, ["walking to a chair", "the man sits down"]]
    assert all(o.backend == "openai" and not o.fell_back for o in out)
    first = out[0].subtexts[1]
    assert TWO[first.start:first.end] == "turns around"
    assert out[1].subtexts[0].start > out[1].subtexts[1].start  # temporal order, not reading order
    assert fake_llm.requests == 2 and fake_llm.auth == ["Bearer sk-abc"] * 2
    body = fake_llm.bodies[0]
    assert body["model"] == "test-model" and body["temperature"] == 0
    assert body["response_format"] == {"type": "json_object"}
    assert body["messages"][0]["role"] == "system" and "JSON" in body["messages"][0]["content"]


@pytest.mark.parametrize("first", [status(429, retry_after="0"), status(500), status(503), DROP],
                         ids=["429", "500", "503", "dropped"])
def test_transient_failure_then_success(fake_llm, first):
    fake_llm.script[TWO] = [first, ok(TWO_ANSWER)]
    s = seg(fake_llm)
    (out,) = s.segment([TWO])
    assert out.texts == TWO_ANSWER and not out.fell_back
    assert fake_llm.per_caption[TWO] == 2 and s.requests == 2


def test_retries_are_bounded_then_fall_back(fake_llm):
    fake_llm.script[TWO] = [status(500)]
    s = seg(fake_llm, max_retries=3)
    (out,) = s.segment([TWO])
    assert fake_llm.per_caption[TWO] == 4  # the first try and 3 retries
    assert out.fallback == "server_error" and out.transient and out.texts == [t.text for t in split(TWO)]


def test_backoff_grows_exponentially(fake_llm):
    fake_llm.script[TWO] = [status(500), status(500), status(500), ok(TWO_ANSWER)]
    s = seg(fake_llm, max_retries=3, backoff=0.05)
    start = time.perf_counter()
    (out,) = s.segment([TWO])
    assert not out.fell_back
    assert time.perf_counter() - start >= 0.05 + 0.1 + 0.2  # 0.05 x (1 + 2 + 4)


def test_timeout_is_retried_then_falls_back(fake_llm):
    fake_llm.script[TWO] = [sleep(1.5)]
    s = seg(fake_llm, timeout=0.3, max_retries=1)
    start = time.perf_counter()
    (out,) = s.segment([TWO])
    assert out.fallback == "timeout" and "2 attempts" in out.detail
    assert fake_llm.per_caption[TWO] == 2
    assert time.perf_counter() - start < 1.5  # did not wait for the server


@pytest.mark.parametrize("answer, reason", [
    (raw("Sure! Here are the parts: walks, turns"), "malformed"),
    (raw('{"subtexts": "a person walks forward"}'), "malformed"),
    (raw(""), "malformed"),
    (ok(["a person walks forward", "then spins around"]), "invented"),  # "spins" is not in the caption
    (ok(["a person walks forward"]), "missing"),  # "turns around" lost
    (ok(["a person", "forward walks", "turns around"]), "not_span"),
], ids=["prose", "string", "empty", "invented", "missing", "not-span"])
def test_invalid_answer_falls_back_with_its_reason(fake_llm, answer, reason):
    fake_llm.script[TWO] = [answer]
    (out,) = seg(fake_llm).segment([TWO])
    assert out.fallback == reason and not out.transient
    assert out.backend == "openai" and out.texts == [t.text for t in split(TWO)]
    assert fake_llm.per_caption[TWO] == 1  # invalid answers are not retried


def test_wrong_temporal_order_is_rejected(fake_llm):
    fake_llm.script[AFTER] = [ok(["the man sits down", "walking to a chair"])]
    (out,) = seg(fake_llm).segment([AFTER])
    assert out.fallback == "order"
    assert out.texts == ["walking to a chair", "the man sits down"]  # the rules' answer


def test_answer_in_code_fence_and_item_objects_is_read(fake_llm):
    answer = '{"subtexts": [{"text": "A person walks forward."}, {"text": "turns around"}]}'
    fake_llm.script[TWO] = [raw(f"```json\n{answer}\n```")]
    (out,) = seg(fake_llm).segment([TWO])
    assert not out.fell_back and out.texts == TWO_ANSWER  # case and punctuation ignored, caption's text kept


def test_refused_key_stops_the_run(fake_llm):
    fake_llm.script[TWO] = [status(401)]
    key = "sk-refused-" + secrets.token_hex(8)
    with pytest.raises(SegmentError) as err:
        seg(fake_llm, api_key=key, api_key_env="MY_KEY_VAR").segment([TWO, AFTER])
    assert "MY_KEY_VAR" in str(err.value) and key not in str(err.value)


def test_concurrency_is_bounded(fake_llm):
    captions = [f"a person walks forward {i} times" for i in range(8)]
    for c in captions:
        fake_llm.script[c] = [sleep(0.15, ok([c]))]
    out = seg(fake_llm, concurrency=3).segment(captions)
    assert [o.caption for o in out] == captions and not any(o.fell_back for o in out)
    assert fake_llm.max_in_flight == 3


def test_missing_key_is_one_clear_error(monkeypatch):
    monkeypatch.delenv("MATE_NO_SUCH_KEY", raising=False)
    cfg = resolve(["segment.backend=openai", "segment.api_key_env=MATE_NO_SUCH_KEY"])
    with pytest.raises(ConfigError, match="MATE_NO_SUCH_KEY"):
        OpenAISegmenter.from_config(cfg)


def test_cache_second_run_makes_no_request_and_transient_failures_are_asked_again(fake_llm, tmp_path, monkeypatch):
    monkeypatch.setenv("MATE_TEST_KEY", "sk-" + secrets.token_hex(12))
    cfg = resolve(["segment.backend=openai", "segment.api_key_env=MATE_TEST_KEY", f"segment.base_url={fake_llm.url}",
                   "segment.model=test-model", "segment.max_retries=0", "segment.timeout=0.5"])
    captions = [TWO, AFTER, "a person jumps", "someone waves", TWO]  # a repeat is asked once
    fake_llm.script[TWO] = [ok(TWO_ANSWER)]
    fake_llm.script["a person jumps"] = [raw("not json")]  # invalid: cached with its fallback
    fake_llm.script["someone waves"] = [status(503), ok(["someone waves"])]  # transient: asked again next run
    first = segment_captions(captions, cfg, tmp_path, progress=False)
    assert fake_llm.requests == 4 and first.tally.captions == 4 and first.tally.computed == 4
    assert first.tally.fallbacks == {"malformed": 1, "server_error": 1}
    assert first.path == SegmentStore(tmp_path, "openai", "test-model", PROMPT_VERSION).path
    assert first.path.parent == tmp_path / "cache" / "segments" / "openai"
    lines = first.path.read_text().splitlines()
    assert json.loads(lines[0])["header"]["version"] == PROMPT_VERSION and len(lines) == 1 + 3

    second = segment_captions(captions, cfg, tmp_path, progress=False)
    assert fake_llm.requests == 5 and fake_llm.per_caption["someone waves"] == 2  # only the transient one
    assert second.tally.cached == 3 and second.tally.fallbacks == {"malformed": 1}
    assert second.segmentations[TWO].texts == TWO_ANSWER

    third = segment_captions(captions, cfg, tmp_path, progress=False)
    assert fake_llm.requests == 5 and third.tally.cached == 4 and third.tally.computed == 0

    # where the cache was published but no key is set (a cluster), the cached answers are read without it ...
    monkeypatch.delenv("MATE_TEST_KEY")
    fourth = segment_captions(captions, cfg, tmp_path, progress=False)
    assert fourth.segmentations == third.segmentations and fake_llm.requests == 5
    # ... and a caption that still needs the LLM is one clear error naming the variable
    with pytest.raises(ConfigError, match="MATE_TEST_KEY"):
        segment_captions(["a new caption"], cfg, tmp_path, progress=False)
    monkeypatch.setenv("MATE_TEST_KEY", "sk-" + secrets.token_hex(12))

    # another model or prompt version is another cache file
    other = resolve([*[f"{k}={v}" for k, v in cfg.section("segment").items() if v is not None],
                     "segment.model=other-model"])
    segment_captions([TWO], other, tmp_path, progress=False)
    assert fake_llm.requests == 6


def _write_dataset(root: Path, captions: list[str]) -> Path:
    texts = root / "texts"
    texts.mkdir(parents=True)
    for i, c in enumerate(captions):
        toks = " ".join(f"{w}/NOUN" for w in c.replace(",", "").replace(".", "").split())
        (texts / f"{i:06d}.txt").write_text(f"{c}#{toks}#0.0#0.0\n")
    return root


def test_cli_openai_run_keeps_the_key_out_of_everything(fake_llm, tmp_path, monkeypatch, capsys, caplog):
    key = "sk-" + secrets.token_hex(20)
    monkeypatch.setenv("MATE_SEGMENT_TEST_KEY", key)
    data = _write_dataset(tmp_path / "data", [TWO, AFTER, "a person jumps", "someone waves"])
    fake_llm.script[TWO] = [status(429, retry_after="0"), ok(TWO_ANSWER)]
    fake_llm.script["a person jumps"] = [raw(f"garbage that echoes {key}")]  # a server echoing the key
    fake_llm.script["someone waves"] = [status(500)]
    caplog.set_level(logging.DEBUG)
    ws, out = tmp_path / "ws", tmp_path / "out"
    argv = ["segment", "--data", str(data), "--backend", "openai", "--workspace", str(ws), "--out", str(out),
            "segment.api_key_env=MATE_SEGMENT_TEST_KEY", f"segment.base_url={fake_llm.url}",
            "segment.model=test-model", "segment.max_retries=1", "segment.timeout=2"]
    assert main(argv) == 0
    printed = capsys.readouterr()
    assert "2 fell back to the rules" in printed.out and "malformed 1" in printed.out
    assert "server_error 1" in printed.out
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["segment/captions"] == 4 and metrics["segment/fallbacks"] == 2
    assert set(fake_llm.auth) == {f"Bearer {key}"}  # the key was used ...
    # ... and appears nowhere else
    assert key not in printed.out + printed.err
    assert key not in caplog.text and not any(key in r.getMessage() for r in caplog.records)
    written = [p for p in list(ws.rglob("*")) + list(out.rglob("*")) if p.is_file()]
    assert any(p.suffix == ".jsonl" for p in written) and (out / "run.json") in written
    for p in written:
        assert key.encode() not in p.read_bytes(), p
        assert key[3:15].encode() not in p.read_bytes(), p  # nor a piece of it
    requests = fake_llm.requests

    assert main(argv) == 0  # second run: from the cache, except the transient failure
    assert fake_llm.requests == requests + 2  # "someone waves" asked again (first try + 1 retry)
    assert "3 from the cache" in capsys.readouterr().out


def test_cli_refused_key_exits_2_without_printing_it(fake_llm, tmp_path, monkeypatch, capsys):
    key = "sk-" + secrets.token_hex(20)
    monkeypatch.setenv("MATE_SEGMENT_TEST_KEY", key)
    data = _write_dataset(tmp_path / "data", [TWO, AFTER])
    fake_llm.script[TWO] = fake_llm.script[AFTER] = [status(401)]
    rc = main(["segment", "--data", str(data), "--backend", "openai", "--workspace", str(tmp_path / "ws"),
               "segment.api_key_env=MATE_SEGMENT_TEST_KEY", f"segment.base_url={fake_llm.url}", "--quiet"])
    printed = capsys.readouterr()
    assert rc == 2 and "refused the API key in MATE_SEGMENT_TEST_KEY" in printed.err
    assert key not in printed.out + printed.err


def test_cli_missing_key_variable_exits_2_naming_it(tmp_path, monkeypatch, capsys):
    monkeypatch.delenv("MATE_UNSET_KEY_VAR", raising=False)
    data = _write_dataset(tmp_path / "data", [TWO])
    rc = main(["segment", "--data", str(data), "--backend", "openai", "--workspace", str(tmp_path / "ws"),
               "segment.api_key_env=MATE_UNSET_KEY_VAR"])
    err = capsys.readouterr().err
    assert rc == 2 and "MATE_UNSET_KEY_VAR" in err and "Traceback" not in err
    assert len(err.strip().splitlines()) == 1


def test_bad_segment_settings_are_config_errors(monkeypatch):
    monkeypatch.setenv("MATE_TEST_KEY", "sk-x")
    for bad in ("segment.concurrency=0", "segment.timeout=0", "segment.max_retries=-1"):
        cfg = resolve(["segment.backend=openai", "segment.api_key_env=MATE_TEST_KEY", bad])
        with pytest.raises(ConfigError, match=bad.split("=")[0]):
            OpenAISegmenter.from_config(cfg)
