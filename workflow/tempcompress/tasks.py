"""Evaluation tasks: local mteb task classes over the shipped data, or real MTEB tasks.

The local tasks subclass mteb's own abstract tasks (AbsTaskSTS, AbsTaskClassification,
AbsTaskClustering, AbsTaskRetrieval) and only override ``load_data``; mteb's evaluators
do the scoring.  mteb is imported lazily so that config checks stay fast.
"""

from __future__ import annotations

from functools import cache
from typing import Any

LOCAL_TASKS = {
    "LeeSTS": "STS: 1,225 pairs of 50 news documents rated by humans (Lee et al. 2005)",
    "BBCNewsClassification": "classification of BBC News article bodies into 5 topics",
    "BBCNewsClustering": "clustering of BBC News article bodies into 5 topics",
    "BBCHeadlineRetrieval": "known-item retrieval: the BBC headline is the query, its article the document",
}


def _metadata(name: str, type_: str, main_score: str, description: str) -> Any:
    from mteb.abstasks.task_metadata import TaskMetadata

    return TaskMetadata(
        name=name,
        type=type_,
        main_score=main_score,
        description=description,
        reference="https://github.com/piskvorky/gensim",
        dataset={"path": f"local/{name}", "revision": "tempcompress-1"},
        category="t2t",
        eval_splits=["test"],
        eval_langs=["eng-Latn"],
        date=("2000-01-01", "2005-12-31"),
        dialect=["Written"],
        domains=["News"],
        task_subtypes=[],
        license="not specified",
        annotations_creators="human-annotated",
        modalities=["text"],
        sample_creation="found",
        bibtex_citation="",
    )


@cache
def _local_task_classes() -> dict[str, type]:
    from datasets import Dataset, DatasetDict
    from mteb.abstasks import AbsTaskClassification, AbsTaskClustering, AbsTaskRetrieval, AbsTaskSTS
    from mteb.abstasks.retrieval_dataset_loaders import RetrievalSplitData

    from .data import bbc_sample, lee_documents, lee_similarity_pairs

    class LeeSTS(AbsTaskSTS):
        metadata = _metadata("LeeSTS", "STS", "cosine_spearman", LOCAL_TASKS["LeeSTS"])
        min_score = 0
        max_score = 1

        def load_data(self, num_proc: int | None = None, **kwargs: Any) -> None:
            docs = lee_documents()
            pairs = lee_similarity_pairs()
            self.dataset = DatasetDict(
                {
                    "test": Dataset.from_dict(
                        {
                            "sentence1": [docs[i] for i, _, _ in pairs],
                            "sentence2": [docs[j] for _, j, _ in pairs],
                            "score": [s for _, _, s in pairs],
                        }
                    )
                }
            )
            self.data_loaded = True

    class _BBC:
        max_documents = 400
        sample_seed = 0

        def _articles(self) -> list:
            return bbc_sample(self.max_documents, self.sample_seed)

    class BBCNewsClassification(_BBC, AbsTaskClassification):
        metadata = _metadata(
            "BBCNewsClassification", "Classification", "accuracy", LOCAL_TASKS["BBCNewsClassification"]
        )
        samples_per_label = 32
        n_experiments = 3

        def _calculate_scores(self, y_test: Any, y_pred: Any) -> Any:
            # mteb passes the label column as a lazy datasets Column, which each of its seven
            # sklearn metrics re-reads row by row (a quarter of all scoring time): read it once.
            import numpy as np

            return super()._calculate_scores(np.asarray(list(y_test)), y_pred)

        def load_data(self, num_proc: int | None = None, **kwargs: Any) -> None:
            arts = self._articles()
            cut = len(arts) // 2
            split = {"train": arts[:cut], "test": arts[cut:]}
            self.dataset = DatasetDict(
                {
                    k: Dataset.from_dict({"text": [a.body for a in v], "label": [a.category for a in v]})
                    for k, v in split.items()
                }
            )
            self.data_loaded = True

    class BBCNewsClustering(_BBC, AbsTaskClustering):
        metadata = _metadata("BBCNewsClustering", "Clustering", "v_measure", LOCAL_TASKS["BBCNewsClustering"])
        max_fraction_of_documents_to_embed = None
        n_clusters = 3  # mteb: number of clustering experiments (k comes from the labels)
        # mteb's default bootstrap draws 16,384 documents with replacement per experiment (each
        # of a few hundred articles ~50 times): about half of all scoring time.  A bootstrap of
        # the corpus size would be 4x cheaper but moves v-measure by up to 0.1 (3 experiments),
        # so mteb's default is kept.

        def load_data(self, num_proc: int | None = None, **kwargs: Any) -> None:
            arts = self._articles()
            self.dataset = DatasetDict(
                {"test": Dataset.from_dict({"sentences": [a.body for a in arts], "labels": [a.category for a in arts]})}
            )
            self.data_loaded = True

    class BBCHeadlineRetrieval(_BBC, AbsTaskRetrieval):
        metadata = _metadata("BBCHeadlineRetrieval", "Retrieval", "ndcg_at_10", LOCAL_TASKS["BBCHeadlineRetrieval"])

        def load_data(self, num_proc: int | None = None, **kwargs: Any) -> None:
            arts = self._articles()
            queries = Dataset.from_list([{"id": f"q-{a.doc_id}", "text": a.headline} for a in arts])
            corpus = Dataset.from_list([{"id": a.doc_id, "text": a.body, "title": ""} for a in arts])
            rel = {f"q-{a.doc_id}": {a.doc_id: 1} for a in arts}
            split = RetrievalSplitData(corpus=corpus, queries=queries, relevant_docs=rel, top_ranked=None)
            self.dataset = {"default": {"test": split}}
            self.data_loaded = True

    return {
        "LeeSTS": LeeSTS,
        "BBCNewsClassification": BBCNewsClassification,
        "BBCNewsClustering": BBCNewsClustering,
        "BBCHeadlineRetrieval": BBCHeadlineRetrieval,
    }


def build_tasks(names: list[str], evaluation: dict[str, Any]) -> list[Any]:
    """mteb task objects for the configured names: local tasks, then real MTEB tasks."""
    classes = _local_task_classes()
    tasks = []
    remote = [n for n in names if n not in classes]
    for name in names:
        if name not in classes:
            continue
        task = classes[name]()
        if hasattr(task, "max_documents"):
            task.max_documents = evaluation["max_documents"]
        tasks.append(apply_protocol(task, evaluation))
    if remote:
        import mteb

        tasks += [apply_protocol(mteb.get_task(name), evaluation) for name in remote]
    return tasks


def apply_protocol(task: Any, evaluation: dict[str, Any]) -> Any:
    """The config's repetition protocol, on local and real MTEB tasks alike: classification
    runs ``experiments`` few-shot experiments of ``samples_per_label`` training examples per
    label; clustering runs ``experiments`` clustering experiments.  (mteb's own defaults are
    10 experiments of 8 examples per label and 10 clustering experiments: paper.yaml keeps
    them.)  A setting left null keeps each task's own default (for MTEB tasks: the published
    protocol, e.g. 16 examples per label for EmotionClassification).  Legacy clustering tasks
    (one clustering per stored set) and other task types have no such setting."""
    kind = task.metadata.type
    experiments, per_label = evaluation.get("experiments"), evaluation.get("samples_per_label")
    if kind == "Classification":
        if experiments is not None:
            task.n_experiments = experiments
        if per_label is not None:
            task.samples_per_label = per_label
    elif kind == "Clustering" and hasattr(task, "n_clusters") and experiments is not None:
        task.n_clusters = experiments
    return task


class TextCollectionUnsupported(NotImplementedError):
    """No text collector for this task type (encode then records the texts by evaluating)."""


def _split_data(task: Any, subset: str, split: str) -> Any:
    """The loaded data of one (subset, split), as AbsTask.evaluate picks it."""
    data = task.dataset
    if subset not in data and subset == "default":
        return data[split]
    return data[subset][split]


def _column(ds: Any, name: str) -> list[str]:
    values = ds[name]
    if values and isinstance(values[0], list):  # legacy clustering: lists of sentences per row
        return [t for row in values for t in row]
    return list(values)


def task_texts(task: Any) -> list[str]:
    """Every text mteb would hand to ``encode`` when evaluating a loaded task, without evaluating.

    Read per task type from the task's loaded data with mteb's own column conventions
    (STS pairs, classification train + eval splits, clustering sentences, retrieval queries
    and corpus as ``mteb._create_dataloaders._retrieval_texts`` forms them).  A superset is
    harmless (mteb may subsample, e.g. clustering); a missing text makes scoring fail loudly.
    Other task types raise ``TextCollectionUnsupported``.
    """
    from mteb._create_dataloaders import _retrieval_texts
    from mteb.abstasks import AbsTaskClassification, AbsTaskClustering, AbsTaskRetrieval, AbsTaskSTS
    from mteb.abstasks.clustering_legacy import AbsTaskClusteringLegacy
    from mteb.types import PromptType

    if task.metadata.modalities != ["text"]:
        raise TextCollectionUnsupported(f"{task.metadata.name}: modalities {task.metadata.modalities}")
    subsets = task.hf_subsets if task.hf_subsets is not None else list(task.dataset)
    texts: list[str] = []
    for subset in subsets:
        for split in task.eval_splits:
            if isinstance(task, AbsTaskRetrieval):
                data = task.dataset[subset][split]
                texts += _retrieval_texts(data["queries"], PromptType.query)
                texts += _retrieval_texts(data["corpus"], PromptType.document)
            elif isinstance(task, AbsTaskSTS) and all(isinstance(c, str) for c in task.column_names):
                ds = _split_data(task, subset, split)
                for col in task.column_names:
                    texts += _column(ds, col)
            elif isinstance(task, AbsTaskClassification) and isinstance(task.input_column_name, str):
                if not task.is_cross_validation:
                    texts += _column(_split_data(task, subset, task.train_split), task.input_column_name)
                texts += _column(_split_data(task, subset, split), task.input_column_name)
            elif (isinstance(task, AbsTaskClustering | AbsTaskClusteringLegacy)
                  and isinstance(task.input_column_name, str)):
                texts += _column(_split_data(task, subset, split), task.input_column_name)
            else:
                raise TextCollectionUnsupported(f"{task.metadata.name}: task type {task.metadata.type}")
    return list(dict.fromkeys(texts))
