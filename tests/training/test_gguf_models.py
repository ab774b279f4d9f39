"""GGUF files as run models: refused at launch when missing or not GGUF, the packaged Gemma named
``gemma-3-270m``, and a conversion cache keyed by the file's content that converts each file once."""
import hashlib
import threading
import time

import pytest

from training import gguf_cache
from training.config import ConfigError, RunConfig
from training.modeling import ModelNotFound, check_model, resolve


def test_a_missing_gguf_path_is_refused_when_the_config_is_built(tmp_path):
    with pytest.raises(ConfigError) as caught:
        RunConfig.from_dict({"generation": {"model": str(tmp_path / "nothing.gguf")}})
    assert caught.value.path == "generation.model"
    assert "nothing.gguf does not exist" in str(caught.value)


def test_a_file_that_is_not_gguf_is_refused_for_the_judge_too(tmp_path):
    fake = tmp_path / "model.gguf"
    fake.write_bytes(b"PK\x03\x04 a zip file, not a model")
    with pytest.raises(ConfigError) as caught:
        RunConfig.from_dict({"judge": {"backend": "likelihood", "model": str(fake)}})
    assert caught.value.path == "judge.model"
    assert "is not a GGUF file" in caught.value.message
    with pytest.raises(ModelNotFound, match="is not a GGUF file"):
        resolve(str(fake), tmp_path / "models")


def test_the_packaged_gemma_is_a_named_model_accepted_at_launch():
    assert gguf_cache.is_gguf("gemma-3-270m") and not gguf_cache.is_gguf("minilm")
    check_model("gemma-3-270m")
    config = RunConfig.from_dict({"generation": {"model": "gemma-3-270m"}, "judge": {"model": "gemma-3-270m"}})
    assert config.generation.model == "gemma-3-270m"


def _gguf_file(path, payload: bytes):
    path.write_bytes(gguf_cache.GGUF_MAGIC + payload)
    return path


def test_conversion_is_cached_by_content_and_done_once(tmp_path, monkeypatch):
    calls = []

    def fake_convert(path, out, name, reporter):
        calls.append(name)
        time.sleep(0.2)  # long enough for the second thread to wait on the lock
        out.mkdir(parents=True)
        (out / gguf_cache.DONE_MARKER).write_text("{}")

    monkeypatch.setattr(gguf_cache, "_convert", fake_convert)
    first = _gguf_file(tmp_path / "a.gguf", b"weights-1")
    copy = _gguf_file(tmp_path / "b.gguf", b"weights-1")
    other = _gguf_file(tmp_path / "c.gguf", b"weights-2")
    models = tmp_path / "models"

    results = []
    threads = [threading.Thread(target=lambda: results.append(resolve(str(first), models))) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    digest = hashlib.sha256(first.read_bytes()).hexdigest()
    assert results == [str(models / "gguf" / digest[:16])] * 2
    assert calls == [str(first)]  # two callers at once, one conversion
    assert resolve(str(copy), models) == results[0]  # same content, another path: no conversion
    assert calls == [str(first)]
    assert resolve(str(other), models) != results[0]
    assert calls == [str(first), str(other)]
